"""mTLS with PEM material from the vault: refused without a client certificate, accepted with one,
and the private key never written to the filesystem."""

import os
import ssl
import sys
import tempfile

import pytest

from integrations.gateway import GatewayConfigError, GatewayConnectionError
from integrations.gateway.tls import memory_file
from tests.gateway.certs import make_pki
from tests.gateway.conftest import DictResolver, make_service
from tests.gateway.server import Reply, Server

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT
_watch: list[list] = []


def _audit(event, args):
    # Every file opened for writing by Python code while a test watches (installed once: hooks stay).
    if event == "open" and _watch and not isinstance(args[0], int):
        path, mode, flags = args
        if (mode and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & WRITE_FLAGS):
            _watch[-1].append(path)


sys.addaudithook(_audit)


@pytest.fixture(scope="module")
def pki():
    return make_pki()


@pytest.fixture(scope="module")
def mtls_server(pki):
    ca, server_pair, _ = pki
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cadata=ca)
    context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
    with memory_file(server_pair.cert, "s-cert") as cert, memory_file(server_pair.key, "s-key") as key:
        context.load_cert_chain(cert, key)
    server = Server(context).start()
    server.script("/secure", Reply(200, json={"secure": True}))
    yield server
    server.stop()


@pytest.fixture
def vault(pki):
    ca, _, client = pki
    return DictResolver({"CA_CERT": ca, "CLIENT_CERT": client.cert, "CLIENT_KEY": client.key})


TLS = {"cert": "${CLIENT_CERT}", "key": "${CLIENT_KEY}", "ca": "${CA_CERT}"}


def mtls_service(server, tls):
    return make_service(server.url, tls=tls, retry={"max_attempts": 1})


async def test_without_a_client_certificate_the_server_refuses(gateway, mtls_server, tenant_id, vault):
    with pytest.raises(GatewayConnectionError):
        await gateway.request(mtls_service(mtls_server, {"ca": "${CA_CERT}"}), tenant_id=tenant_id, resolver=vault)


async def test_with_the_client_certificate_the_call_succeeds(gateway, mtls_server, tenant_id, vault, tmp_path):
    tempfile.tempdir, saved = str(tmp_path), tempfile.tempdir
    _watch.append([])
    try:
        response = await gateway.request(
            mtls_service(mtls_server, TLS), tenant_id=tenant_id, resolver=vault, path="/secure"
        )
    finally:
        written, tempfile.tempdir = _watch.pop(), saved
    assert response.json() == {"secure": True}
    assert mtls_server.hits("/secure")[-1].peer == "voice-gateway"
    assert written == []  # no file was opened for writing: the key went through memfd only
    assert list(tmp_path.iterdir()) == []


async def test_pem_text_may_be_given_directly(gateway, mtls_server, tenant_id, pki):
    ca, _, client = pki
    tls = {"cert": client.cert, "key": client.key, "ca": ca}
    response = await gateway.request(
        mtls_service(mtls_server, tls), tenant_id=tenant_id, resolver=DictResolver(), path="/secure"
    )
    assert response.status_code == 200


async def test_the_servers_certificate_must_chain_to_the_configured_ca(gateway, mtls_server, tenant_id, vault):
    other_ca, _, _ = make_pki()
    vault.secrets["CA_CERT"] = other_ca
    with pytest.raises(GatewayConnectionError):
        await gateway.request(mtls_service(mtls_server, TLS), tenant_id=tenant_id, resolver=vault, path="/secure")


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"cert": "/etc/voice-gateway/certs/client.pem", "key": "${CLIENT_KEY}"}, "tls.cert .* is not PEM text"),
        ({"cert": "${CLIENT_CERT}", "key": "${CLIENT_CERT}"}, "TLS material .* cannot be loaded"),
        ({"ca": "-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n"}, "cannot be loaded"),
    ],
)
async def test_bad_tls_material_is_a_config_error(gateway, mtls_server, tenant_id, vault, tls, message):
    before = len(mtls_server.requests)
    with pytest.raises(GatewayConfigError, match=message):
        await gateway.request(mtls_service(mtls_server, tls), tenant_id=tenant_id, resolver=vault, path="/secure")
    assert len(mtls_server.requests) == before


def test_the_write_watch_sees_a_file_written_to_disk(tmp_path):
    _watch.append([])
    try:
        (tmp_path / "key.pem").write_text("-----BEGIN " + "PRIVATE KEY-----")  # a path, not PEM text: refused
    finally:
        written = _watch.pop()
    assert written == [str(tmp_path / "key.pem")]
