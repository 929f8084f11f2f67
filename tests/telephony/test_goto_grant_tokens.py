"""A tenant's GoTo grant in use: access tokens refreshed before expiry, rotation, revocation, the worker's view."""

import asyncio
import logging
from base64 import b64encode

import pytest
from django.test import Client

from telephony.carriers.goto import auth, grant
from telephony.carriers.goto.config import GoToConnectError
from telephony.models import GoToConnection
from tests import factories
from tests.telephony import fake_goto_oauth
from tests.telephony.fake_goto_oauth import FakeGoToOAuth

START = 1_900_000_000.0
REDIRECT_URI = "https://voice.example/numbers/goto/callback/"


@pytest.fixture
def goto_oauth(settings):
    fake = FakeGoToOAuth().start()
    fake_goto_oauth.point_settings_at(fake, settings)
    yield fake
    fake.stop()
    auth.GRANT_TOKENS.clear()


@pytest.fixture
def clock(monkeypatch):
    now = [START]
    monkeypatch.setattr(grant, "clock", lambda: now[0])
    return now


def connect(tenant, fake: FakeGoToOAuth) -> GoToConnection:
    """What the consent's callback does, with a code GoTo issued for our redirect URI."""
    fake.codes["code-1"] = {"redirect_uri": REDIRECT_URI, "scope": "webrtc.v1.write users.v1.lines.read"}
    answer = grant.exchange_code(code="code-1", redirect_uri=REDIRECT_URI)
    return grant.connection_save(tenant=tenant, grant=answer, line=grant.read_line(answer.access_token))


def refreshes(fake: FakeGoToOAuth) -> list:
    return [r for r in fake.token_requests() if r.form.get("grant_type") == ["refresh_token"]]


def stored(connection: GoToConnection) -> dict:
    connection.refresh_from_db()
    return grant.open_tokens(connection)


async def token_of(connection: GoToConnection, cache: "auth._Cache | None" = None) -> str:
    return await auth.GrantTokens(str(connection.pk), cache=cache).token()


@pytest.fixture
def tenant(transactional_db):
    return factories.TenantFactory(name="Acme Dental", slug="acme-dental")


def test_a_fresh_access_token_is_used_without_asking_goto(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)

    value = asyncio.run(token_of(connection))

    assert value == goto_oauth.issued[0]["access_token"]
    assert refreshes(goto_oauth) == []


def test_the_token_is_refreshed_before_it_expires_and_the_rotated_refresh_token_is_stored(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)
    first = goto_oauth.issued[0]
    clock[0] += 3600 - 59  # less than a minute left

    value = asyncio.run(token_of(connection))

    [refresh] = refreshes(goto_oauth)
    basic = b64encode(f"{fake_goto_oauth.CLIENT_ID}:{fake_goto_oauth.CLIENT_SECRET}".encode()).decode()
    assert refresh.headers["authorization"] == f"Basic {basic}"
    assert refresh.form == {"grant_type": ["refresh_token"], "refresh_token": [first["refresh_token"]]}
    second = goto_oauth.issued[1]
    assert value == second["access_token"] != first["access_token"]
    assert stored(connection) == {"refresh_token": second["refresh_token"], "access_token": second["access_token"]}
    assert connection.refreshed_at.timestamp() == clock[0]
    # The old refresh token is dead at GoTo; the next refresh uses the stored new one and works.
    clock[0] += 3600
    assert asyncio.run(token_of(connection, auth._Cache())) == goto_oauth.issued[2]["access_token"]
    assert refreshes(goto_oauth)[1].form["refresh_token"] == [second["refresh_token"]]


def test_a_refresh_answer_without_a_refresh_token_keeps_the_old_one(tenant, goto_oauth, clock):
    goto_oauth.refresh_mode = "omit"
    connection = connect(tenant, goto_oauth)
    original = goto_oauth.issued[0]["refresh_token"]

    for _ in range(2):
        clock[0] += 3600
        asyncio.run(token_of(connection, auth._Cache()))

    assert [r.form["refresh_token"] for r in refreshes(goto_oauth)] == [[original], [original]]
    assert "refresh_token" not in goto_oauth.issued[1]
    assert stored(connection) == {"refresh_token": original, "access_token": goto_oauth.issued[2]["access_token"]}


def test_concurrent_callers_share_one_refresh(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)
    clock[0] += 3600

    async def burst():
        tokens = auth.GrantTokens(str(connection.pk))
        return await asyncio.gather(*(tokens.token() for _ in range(5)))

    values = asyncio.run(burst())

    assert len(refreshes(goto_oauth)) == 1
    assert set(values) == {goto_oauth.issued[1]["access_token"]}


def test_another_process_uses_the_token_one_process_refreshed(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)
    clock[0] += 3600
    first_process, second_process = auth._Cache(), auth._Cache()

    one = asyncio.run(token_of(connection, first_process))
    two = asyncio.run(token_of(connection, second_process))

    assert one == two == goto_oauth.issued[1]["access_token"]
    assert len(refreshes(goto_oauth)) == 1


def test_a_token_goto_refused_is_not_handed_out_again(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)
    tokens = auth.GrantTokens(str(connection.pk), cache=auth._Cache())

    async def refused_then_again():
        first = await tokens.token()
        tokens.invalidate()
        return first, await tokens.token()

    first, second = asyncio.run(refused_then_again())

    assert first == goto_oauth.issued[0]["access_token"]
    assert second == goto_oauth.issued[1]["access_token"]
    assert tokens.last_token == second
    assert len(refreshes(goto_oauth)) == 1


def test_a_revoked_grant_needs_reconnecting_and_stops_asking_goto(tenant, goto_oauth, clock, caplog):
    caplog.set_level(logging.DEBUG)
    connection = connect(tenant, goto_oauth)
    secrets = [goto_oauth.issued[0]["refresh_token"], goto_oauth.issued[0]["access_token"]]
    goto_oauth.revoke_all()  # the user removed the app at GoTo
    clock[0] += 3600

    with pytest.raises(GoToConnectError) as first:
        asyncio.run(token_of(connection))
    with pytest.raises(GoToConnectError) as again:
        asyncio.run(token_of(connection, auth._Cache()))

    reason = "GoTo refused the stored sign-in (invalid_grant: Invalid refresh token)."
    for error in (first.value, again.value):
        assert error.code == "goto_reconnect_required"
        assert error.message == (
            f"GoTo no longer accepts this tenant's sign-in ({reason}): "
            "a tenant admin must reconnect GoTo on the Phone numbers page."
        )
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == ("reconnect_required", reason)
    assert len(refreshes(goto_oauth)) == 1  # the second call did not ask GoTo again
    assert [c.connection_id for c in grant.connected_accounts()] == []
    for secret in secrets:
        assert secret not in caplog.text and secret not in connection.last_error


def test_the_dashboard_asks_to_reconnect_goto(tenant, goto_oauth, clock):
    connection = connect(tenant, goto_oauth)
    goto_oauth.revoke_all()
    clock[0] += 3600
    with pytest.raises(GoToConnectError):
        asyncio.run(token_of(connection))
    owner = factories.UserFactory(username="alice")
    factories.MembershipFactory(tenant=tenant, user=owner, role="owner")
    browser = Client()
    browser.force_login(owner)

    html = browser.get("/numbers/").content.decode()

    assert "Reconnect required" in html
    assert "Reconnect GoTo" in html
    assert "invalid_grant: Invalid refresh token" in html


def test_an_unreachable_token_endpoint_is_retryable_and_keeps_the_connection(tenant, goto_oauth, clock, settings):
    connection = connect(tenant, goto_oauth)
    settings.GOTO_OAUTH_TOKEN_URL = "http://127.0.0.1:9/oauth/token"  # the discard port: nothing listens
    clock[0] += 3600

    with pytest.raises(GoToConnectError) as error:
        asyncio.run(token_of(connection))

    assert (error.value.code, error.value.retryable) == ("pbx_token_unavailable", True)
    connection.refresh_from_db()
    assert connection.status == "connected"


def test_a_disconnected_tenant_gets_no_token(tenant, goto_oauth, clock):
    connection = grant.connection_disconnect(connection=connect(tenant, goto_oauth))

    with pytest.raises(GoToConnectError) as error:
        asyncio.run(token_of(connection))

    assert error.value.code == "goto_not_connected"
    assert refreshes(goto_oauth) == []


def test_the_media_worker_sees_every_connected_line_and_gets_its_tokens(tenant, goto_oauth, clock):
    other = factories.TenantFactory(name="Globex Clinic", slug="globex-clinic")
    connection = connect(tenant, goto_oauth)
    gone = grant.connection_disconnect(connection=connect(other, goto_oauth))

    accounts = grant.connected_accounts()

    assert accounts == [
        grant.GoToAccount(
            tenant_id=str(tenant.pk),
            connection_id=str(connection.pk),
            account_key=fake_goto_oauth.ACCOUNT_KEY,
            organization_id=fake_goto_oauth.ORGANIZATION_ID,
            extension=fake_goto_oauth.EXTENSION,
            line_id=fake_goto_oauth.LINE_ID,
        )
    ]
    assert str(gone.pk) not in [a.connection_id for a in accounts]
    tokens = grant.tokens_for(accounts[0].connection_id)
    assert isinstance(tokens, auth.GrantTokens)
    assert asyncio.run(tokens.token()) == goto_oauth.issued[0]["access_token"]


def test_key_rotation_re_seals_the_goto_tokens_under_the_newest_key(tenant, goto_oauth, clock, settings, capsys):
    from django.core.management import call_command

    from integrations import vault

    old, new = vault.generate_key_value("k1"), vault.generate_key_value("k2")
    settings.INTEGRATION_CRYPTO_KEY = old
    connection = connect(tenant, goto_oauth)
    tokens = stored(connection)
    settings.INTEGRATION_CRYPTO_KEY = f"{new},{old}"

    call_command("rotate_credential_keys")
    call_command("rotate_credential_keys")  # idempotent

    out = capsys.readouterr().out
    assert out.count("GoTo connections: 1 re-encrypted, 0 failed.") == 1
    settings.INTEGRATION_CRYPTO_KEY = new  # the old key can go
    connection.refresh_from_db()
    assert connection.key_id == "k2"
    assert grant.open_tokens(connection) == tokens
