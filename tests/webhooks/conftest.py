import pytest

from tests.webhooks.receiver import ReceiverServer


@pytest.fixture
def receiver():
    with ReceiverServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _local_network(settings):
    # The receiver is on 127.0.0.1: let the SSRF guard pass it (tests of the guard turn it off again).
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True
