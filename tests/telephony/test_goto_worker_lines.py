"""The media worker serves every connected GoTo account (`MediaWorker.start_goto`), and no longer one whose
tenant disconnected GoTo: the grant's connections (a fake GoTo OAuth server) and the fake GoTo's channel,
subscription and device registration."""

import pytest
from channels.db import database_sync_to_async

from telephony import worker as media_worker_module
from telephony.carriers.goto import auth, grant
from tests import factories
from tests.telephony import fake_goto_oauth
from tests.telephony.bridge_support import point_settings_at
from tests.telephony.fake_goto import FakeGoTo, FakeTokens
from tests.telephony.fake_goto_oauth import FakeGoToOAuth

REDIRECT_URI = "https://voice.example/numbers/goto/callback/"


@pytest.fixture
def goto_oauth(settings):
    fake = FakeGoToOAuth().start()
    fake_goto_oauth.point_settings_at(fake, settings)
    yield fake
    fake.stop()
    auth.GRANT_TOKENS.clear()


@database_sync_to_async
def connect(tenant, fake: FakeGoToOAuth):
    """What the consent's callback does, with a code GoTo issued for our redirect URI."""
    fake.codes["code-1"] = {"redirect_uri": REDIRECT_URI, "scope": "webrtc.v1.write users.v1.lines.read"}
    answer = grant.exchange_code(code="code-1", redirect_uri=REDIRECT_URI)
    return grant.connection_save(tenant=tenant, grant=answer, line=grant.read_line(answer.access_token))


async def test_the_worker_serves_each_connected_goto_account_once_and_drops_a_disconnected_one(
    transactional_db, goto_oauth, settings, monkeypatch
):
    tenant = await database_sync_to_async(factories.TenantFactory)(name="Acme Dental", slug="acme-dental")
    connection = await connect(tenant, goto_oauth)
    async with FakeGoTo() as fake:
        fake.add_account(
            fake_goto_oauth.ACCOUNT_KEY,
            organization_id=fake_goto_oauth.ORGANIZATION_ID,
            extension=fake_goto_oauth.EXTENSION,
        )
        point_settings_at(fake, settings)
        served: list[str] = []
        monkeypatch.setattr(grant, "tokens_for", lambda cid: served.append(cid) or FakeTokens(fake))
        worker = media_worker_module.MediaWorker(worker_id="w1")
        try:
            await worker.start_goto()
            await fake.until(lambda: fake.registered(fake_goto_oauth.EXTENSION) == 1, 10, "the device")
            line = worker.line_for(tenant.pk)
            await worker.start_goto()  # the sweep again: the running line is kept
            assert list(worker.lines) == [str(connection.pk)] and worker.line_for(tenant.pk) is line
            assert served == [str(connection.pk)]  # one line, its tokens asked for once
            assert line.account.organization_id == fake_goto_oauth.ORGANIZATION_ID

            await database_sync_to_async(grant.connection_disconnect)(connection=connection)
            await worker.start_goto()
            removed = fake.requests_to(rf"/web-calls/v1/devices/{line.device_id}$", method="DELETE")
        finally:
            await worker.drain(5.0)
    assert worker.lines == {} and worker.line_for(tenant.pk) is None
    assert len(removed) == 1  # the device was removed at GoTo
