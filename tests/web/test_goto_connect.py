"""Connecting GoTo: the consent round trip through the real views against a fake GoTo OAuth server."""

import json
import logging
from base64 import b64encode
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.core import signing
from django.test import Client

from telephony.carriers.goto import grant
from telephony.models import GoToConnection
from tenants.models import AuditLog, Membership
from tests import factories
from tests.telephony import fake_goto_oauth
from tests.telephony.fake_goto_oauth import FakeGoToOAuth

pytestmark = pytest.mark.django_db

CONNECT_URL = "/numbers/goto/connect/"
CALLBACK_URL = "http://testserver/numbers/goto/callback/"


@pytest.fixture
def goto_oauth(settings):
    fake = FakeGoToOAuth().start()
    fake_goto_oauth.point_settings_at(fake, settings)
    yield fake
    fake.stop()


def start(client: Client, fake: FakeGoToOAuth) -> str:
    """Press "Connect GoTo", let GoTo's consent page answer, and return where GoTo sends the browser back."""
    response = client.post(CONNECT_URL)
    assert response.status_code == 302
    at_goto = httpx.get(response["Location"], follow_redirects=False)
    assert at_goto.status_code == 302
    back = at_goto.headers["location"]
    assert back.startswith(CALLBACK_URL)
    return back.removeprefix("http://testserver")


def test_connect_goto_sends_the_admin_to_gotos_consent_page_with_our_client_and_scopes(
    web_client, goto_oauth, settings
):
    response = web_client.post(CONNECT_URL)

    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == goto_oauth.authorize_url
    query = parse_qs(url.query)
    assert set(query) == {"client_id", "response_type", "redirect_uri", "scope", "state"}
    assert query["client_id"] == [fake_goto_oauth.CLIENT_ID]
    assert query["response_type"] == ["code"]
    assert query["redirect_uri"] == [CALLBACK_URL]
    assert query["scope"] == [
        "webrtc.v1.read webrtc.v1.write call-events.v1.notifications.manage call-events.v1.events.read "
        "users.v1.lines.read call-control.v1.calls.control voice-admin.v1.read"
    ]
    assert settings.GOTO_CLIENT_SECRET not in response["Location"]


def test_the_consent_round_trip_stores_the_grant_sealed_with_the_account_and_line(
    web_client, tenant, owner, goto_oauth
):
    back = start(web_client, goto_oauth)

    response = web_client.get(back, follow=True)

    assert response.redirect_chain == [("/numbers/", 302)]
    connection = GoToConnection.objects.for_tenant(tenant).get()
    assert (connection.status, connection.account_key, connection.organization_id) == (
        "connected",
        fake_goto_oauth.ACCOUNT_KEY,
        fake_goto_oauth.ORGANIZATION_ID,
    )
    assert (connection.extension, connection.line_id, connection.principal) == (
        fake_goto_oauth.EXTENSION,
        fake_goto_oauth.LINE_ID,
        fake_goto_oauth.PRINCIPAL,
    )
    assert connection.connected_by == owner
    [issued] = goto_oauth.issued
    assert connection.scopes == issued["scope"]
    assert grant.open_tokens(connection) == {
        "refresh_token": issued["refresh_token"],
        "access_token": issued["access_token"],
    }
    assert issued["refresh_token"].encode() not in bytes(connection.ciphertext)
    # The code exchange: form-encoded, the client as HTTP Basic, the same redirect_uri.
    [exchange] = goto_oauth.token_requests()
    basic = b64encode(f"{fake_goto_oauth.CLIENT_ID}:{fake_goto_oauth.CLIENT_SECRET}".encode()).decode()
    assert exchange.headers["authorization"] == f"Basic {basic}"
    assert exchange.form["grant_type"] == ["authorization_code"]
    assert exchange.form["redirect_uri"] == [CALLBACK_URL]
    assert exchange.form["code"] == parse_qs(urlsplit(back).query)["code"]
    reads = [(r.path, r.headers.get("authorization")) for r in goto_oauth.requests if r.method == "GET"]
    assert reads[1:] == [
        ("/admin/rest/v1/me", f"Bearer {issued['access_token']}"),
        ("/users/v1/lines", f"Bearer {issued['access_token']}"),
    ]
    html = response.content.decode()
    assert "GoTo is connected: agents answer on extension 1001." in html
    assert "Connected" in html and 'data-testid="goto-disconnect"' in html
    [audit] = AuditLog.objects.for_tenant(tenant).filter(action="goto.connect")
    assert audit.changes == {
        "account_key": fake_goto_oauth.ACCOUNT_KEY,
        "extension": "1001",
        "line_id": fake_goto_oauth.LINE_ID,
    }


def test_a_replayed_state_is_refused_and_changes_nothing(web_client, tenant, goto_oauth):
    back = start(web_client, goto_oauth)
    web_client.get(back)
    connection = GoToConnection.objects.for_tenant(tenant).get()

    response = web_client.get(back)

    assert response.status_code == 400
    assert "not valid any more" in response.content.decode()
    assert len(goto_oauth.token_requests()) == 1
    assert GoToConnection.objects.for_tenant(tenant).get().refreshed_at == connection.refreshed_at


def test_a_forged_state_is_refused_without_asking_goto(web_client, tenant, goto_oauth):
    back = start(web_client, goto_oauth)
    query = parse_qs(urlsplit(back).query)
    forged = signing.dumps({"n": "guessed", "t": str(tenant.pk)}, salt=grant.STATE_SALT)

    for state in (forged, "not-even-signed", ""):
        response = web_client.get("/numbers/goto/callback/", {"code": query["code"][0], "state": state})
        assert response.status_code == 400
        assert 'data-testid="goto-failed"' in response.content.decode()

    assert goto_oauth.token_requests() == []
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_an_expired_state_is_refused(web_client, tenant, goto_oauth, monkeypatch):
    now = [1_900_000_000.0]
    monkeypatch.setattr(grant, "clock", lambda: now[0])
    back = start(web_client, goto_oauth)
    now[0] += grant.STATE_SECONDS + 1

    response = web_client.get(back)

    assert response.status_code == 400
    assert goto_oauth.token_requests() == []
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_a_state_from_another_browser_is_refused(web_client, other_web_client, tenant, other_tenant, goto_oauth):
    back = start(web_client, goto_oauth)

    response = other_web_client.get(back)

    assert response.status_code == 400
    assert goto_oauth.token_requests() == []
    assert not GoToConnection.objects.dangerously_unscoped().exists()


def test_denied_consent_says_so_and_stores_nothing(web_client, tenant, goto_oauth):
    goto_oauth.deny = True
    back = start(web_client, goto_oauth)
    assert parse_qs(urlsplit(back).query)["error"] == ["access_denied"]

    response = web_client.get(back, follow=True)

    assert response.redirect_chain == [("/numbers/", 302)]
    assert "the sign-in at GoTo was cancelled or access was declined" in response.content.decode()
    assert goto_oauth.token_requests() == []
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_a_code_goto_refuses_is_a_clear_message_not_a_500(web_client, tenant, goto_oauth):
    back = start(web_client, goto_oauth)
    goto_oauth.codes.clear()  # the code expired at GoTo before we used it

    response = web_client.get(back, follow=True)

    assert response.redirect_chain == [("/numbers/", 302)]
    assert (
        "GoTo was not connected. GoTo refused the sign-in (invalid_grant: Invalid authorization code)."
        in response.content.decode()
    )
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_a_goto_user_without_a_line_is_told_what_to_do(web_client, tenant, goto_oauth):
    goto_oauth.lines = []
    response = web_client.get(start(web_client, goto_oauth), follow=True)

    assert "has no phone line: sign in as the user whose extension" in response.content.decode()
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_without_the_platforms_goto_client_connect_says_so(web_client, goto_oauth, settings):
    settings.GOTO_CLIENT_SECRET = ""

    response = web_client.post(CONNECT_URL, follow=True)

    assert response.redirect_chain == [("/numbers/", 302)]
    assert "GoTo is not set up on this platform" in response.content.decode()
    assert goto_oauth.requests == []


def test_only_tenant_admins_connect_or_disconnect(tenant, goto_oauth, member_client, viewer_client):
    for client in (member_client, viewer_client):
        assert client.post(CONNECT_URL).status_code == 403
        page = client.get("/numbers/").content.decode()
        assert 'data-testid="goto-connect"' not in page
    assert goto_oauth.requests == []


def test_another_tenant_cannot_see_or_disconnect_this_tenants_connection(
    web_client, other_web_client, tenant, goto_oauth
):
    web_client.get(start(web_client, goto_oauth))
    connection = GoToConnection.objects.for_tenant(tenant).get()

    page = other_web_client.get("/numbers/").content.decode()
    response = other_web_client.post(f"/numbers/goto/{connection.pk}/disconnect/")

    assert response.status_code == 404
    assert "1001" not in page and fake_goto_oauth.PRINCIPAL not in page
    assert GoToConnection.objects.for_tenant(tenant).get().status == "connected"


def test_a_member_of_another_tenant_cannot_finish_a_consent_for_this_one(tenant, other_tenant, goto_oauth):
    """A user who is admin of the other tenant only: the consent they start is theirs; this tenant's is a 404."""
    user = factories.UserFactory(username="mallory")
    factories.MembershipFactory(tenant=other_tenant, user=user, role=Membership.Role.OWNER)
    factories.MembershipFactory(tenant=tenant, user=user, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(user)
    session = client.session
    session["active_tenant_id"] = str(other_tenant.pk)
    session.save()
    back = start(client, goto_oauth)
    # The pending consent is for other_tenant; rewrite it to name this tenant, as a tampered session would.
    session = client.session
    session[grant.SESSION_KEY]["tenant"] = str(tenant.pk)
    session.save()
    state = signing.dumps({"n": session[grant.SESSION_KEY]["nonce"], "t": str(tenant.pk)}, salt=grant.STATE_SALT)
    code = parse_qs(urlsplit(back).query)["code"][0]

    response = client.get("/numbers/goto/callback/", {"code": code, "state": state})

    assert response.status_code == 404
    assert goto_oauth.token_requests() == []
    assert not GoToConnection.objects.for_tenant(tenant).exists()


def test_disconnect_forgets_the_tokens(web_client, tenant, goto_oauth):
    web_client.get(start(web_client, goto_oauth))
    connection = GoToConnection.objects.for_tenant(tenant).get()

    response = web_client.post(f"/numbers/goto/{connection.pk}/disconnect/", follow=True)

    assert response.redirect_chain == [("/numbers/", 302)]
    connection.refresh_from_db()
    assert (connection.status, connection.key_id, bytes(connection.ciphertext)) == ("disconnected", "", b"")
    assert "Connect GoTo" in response.content.decode()
    assert AuditLog.objects.for_tenant(tenant).filter(action="goto.disconnect").count() == 1


def test_staff_connect_a_tenant_from_the_admin(staff_client, staff_user, tenant, goto_oauth):
    page = staff_client.get("/admin/telephony/gotoconnection/connect/")
    assert page.status_code == 200
    response = staff_client.post("/admin/telephony/gotoconnection/connect/", {"tenant": str(tenant.pk)})
    assert response.status_code == 302 and response["Location"].startswith(goto_oauth.authorize_url)
    back = httpx.get(response["Location"]).headers["location"].removeprefix("http://testserver")

    done = staff_client.get(back)

    assert (done.status_code, done["Location"]) == (302, "/admin/telephony/gotoconnection/")
    connection = GoToConnection.objects.for_tenant(tenant).get()
    assert (connection.status, connection.connected_by) == ("connected", staff_user)


def test_secrets_never_reach_responses_logs_the_audit_log_or_the_admin(
    web_client, staff_client, tenant, goto_oauth, caplog
):
    back = start(web_client, goto_oauth)  # the browser's own trip to GoTo (the test's httpx logs the code)
    caplog.set_level(logging.DEBUG)
    responses = [web_client.get(back, follow=True), web_client.get("/numbers/")]
    connection = GoToConnection.objects.for_tenant(tenant).get()
    responses += [
        staff_client.get("/admin/telephony/gotoconnection/"),
        staff_client.get(f"/admin/telephony/gotoconnection/{connection.pk}/change/"),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200]
    [issued] = goto_oauth.issued
    code = parse_qs(urlsplit(back).query)["code"][0]
    secrets = [issued["access_token"], issued["refresh_token"], fake_goto_oauth.CLIENT_SECRET, code]
    bodies = "\n".join(r.content.decode() for r in responses)
    logs = caplog.text + "\n".join(repr(record.__dict__) for record in caplog.records)
    audit = json.dumps(list(AuditLog.objects.dangerously_unscoped().values()), default=str)
    for secret in secrets:
        assert secret not in bodies
        assert secret not in logs
        assert secret not in audit
    assert "Sign in at GoTo again for this tenant" in bodies  # the admin's reconnect link
    assert any(record.name == "httpx2" for record in caplog.records)  # our token request's DEBUG log was captured


def test_staff_disconnect_a_tenant_from_the_admin(web_client, staff_client, tenant, goto_oauth):
    web_client.get(start(web_client, goto_oauth))
    connection = GoToConnection.objects.for_tenant(tenant).get()

    response = staff_client.post(
        "/admin/telephony/gotoconnection/",
        {"action": "disconnect", "_selected_action": [str(connection.pk)]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 GoTo connection(s) disconnected." in response.content.decode()
    connection.refresh_from_db()
    assert (connection.status, bytes(connection.ciphertext)) == ("disconnected", b"")
    assert staff_client.get("/admin/telephony/gotoconnection/add/").status_code == 403  # made only by consent


def test_a_configured_redirect_uri_is_the_one_sent_at_both_steps(web_client, tenant, goto_oauth, settings):
    settings.GOTO_OAUTH_REDIRECT_URI = "https://voice.example/numbers/goto/callback/"
    response = web_client.post(CONNECT_URL)
    assert parse_qs(urlsplit(response["Location"]).query)["redirect_uri"] == [settings.GOTO_OAUTH_REDIRECT_URI]
    back = httpx.get(response["Location"]).headers["location"]

    web_client.get(back.removeprefix("https://voice.example"))

    [exchange] = goto_oauth.token_requests()
    assert exchange.form["redirect_uri"] == [settings.GOTO_OAUTH_REDIRECT_URI]
    assert GoToConnection.objects.for_tenant(tenant).get().status == "connected"


def test_a_signed_out_browser_is_sent_to_sign_in_first(client, goto_oauth):
    response = client.get("/numbers/goto/callback/", {"code": "x", "state": "y"})

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert goto_oauth.requests == []
