"""Programs open the websockets with an API key, through a plain websocket client (no browser, no Origin).

The real ASGI application runs under Uvicorn on 127.0.0.1 (`asgi_server`); the client is the `websockets`
library, which sends no Origin header unless told to. An Origin check protects cookie sessions, so it
still refuses a session cookie without an allowed Origin, while an API key needs none.
"""

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from calls.state_machine import CallStatus
from tenants.models import Membership
from tenants.services import api_key_create, api_key_revoke
from tests import factories
from tests.web.test_live_consumers import session_cookie

TIMEOUT = 30


def ws_url(server, path: str) -> str:
    return f"ws://127.0.0.1:{server.port}{path}"


def open_socket(server, path: str, **headers):
    return connect(ws_url(server, path), additional_headers=headers, open_timeout=TIMEOUT, close_timeout=5)


def receive(socket) -> dict:
    return json.loads(socket.recv(timeout=TIMEOUT))


@pytest.fixture
def tenant_key(asgi_server):
    tenant = factories.TenantFactory(name="Acme Dental", slug="acme-dental")
    return tenant, api_key_create(tenant=tenant, name="program", scopes=["read", "write"]).secret


def live_call(tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Receptionist")
    return factories.CallFactory(tenant=tenant, agent=agent, status=CallStatus.CONVERSING)


def test_a_program_with_an_api_key_and_no_origin_follows_the_tenants_calls(asgi_server, tenant_key):
    tenant, key = tenant_key
    call = live_call(tenant)
    with open_socket(asgi_server, "/ws/v1/live", **{"X-API-Key": key}) as socket:
        snapshot = receive(socket)
    assert snapshot["type"] == "snapshot"
    assert [c["id"] for c in snapshot["calls"]] == [str(call.pk)]


def test_a_program_with_an_api_key_follows_one_call(asgi_server, tenant_key):
    tenant, key = tenant_key
    call = live_call(tenant)
    with open_socket(asgi_server, f"/ws/v1/live/calls/{call.pk}", **{"X-API-Key": key}) as socket:
        first = receive(socket)
    assert (first["type"], first["call"]["id"]) == ("call", str(call.pk))


def test_a_program_with_an_api_key_reaches_the_test_call_socket(asgi_server, tenant_key):
    _tenant, key = tenant_key
    with open_socket(asgi_server, "/ws/v1/test-calls", **{"X-API-Key": key}) as socket:
        socket.send(json.dumps({"type": "ping"}))
        answer = receive(socket)
    assert answer["type"] == "error" and "start" in answer["message"]


def test_another_tenants_call_is_refused_like_a_missing_one(asgi_server, tenant_key):
    _tenant, key = tenant_key
    theirs = live_call(factories.TenantFactory(name="Globex", slug="globex"))
    with open_socket(asgi_server, f"/ws/v1/live/calls/{theirs.pk}", **{"X-API-Key": key}) as socket:
        refusal = receive(socket)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=TIMEOUT)
    assert refusal["code"] == "call_not_found"
    assert closed.value.rcvd.code == 4404


def test_another_tenants_agent_is_refused_on_the_test_call_socket(asgi_server, tenant_key):
    _tenant, key = tenant_key
    theirs = factories.AgentFactory(tenant=factories.TenantFactory(name="Globex", slug="globex"))
    with open_socket(asgi_server, "/ws/v1/test-calls", **{"X-API-Key": key}) as socket:
        socket.send(json.dumps({"type": "start", "agent_id": str(theirs.pk), "sdp": "v=0"}))
        refusal = receive(socket)
    assert refusal["code"] == "agent_not_found"


def test_a_revoked_key_without_origin_is_refused_by_the_socket(asgi_server, tenant_key):
    tenant, _key = tenant_key
    issued = api_key_create(tenant=tenant, name="old", scopes=["read"])
    api_key_revoke(api_key=issued.api_key)
    with open_socket(asgi_server, "/ws/v1/live", **{"X-API-Key": issued.secret}) as socket:
        refusal = receive(socket)
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=TIMEOUT)
    assert (refusal["type"], refusal["code"], closed.value.rcvd.code) == ("error", "api_key_revoked", 4401)


def test_no_key_and_no_origin_is_refused_at_the_handshake(asgi_server, tenant_key):
    with pytest.raises(InvalidStatus) as refused:
        open_socket(asgi_server, "/ws/v1/live")
    assert refused.value.response.status_code == 403


def test_a_session_cookie_from_another_site_is_refused_at_the_handshake(asgi_server, tenant_key):
    tenant, _key = tenant_key
    cookie = session_cookie(tenant, role=Membership.Role.OWNER, username="olivia").decode()
    with pytest.raises(InvalidStatus) as refused:
        open_socket(asgi_server, "/ws/v1/live", Cookie=cookie, Origin="https://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus):
        open_socket(asgi_server, "/ws/v1/live", Cookie=cookie)  # a cookie without any Origin: not a program's way


def test_the_dashboards_own_origin_with_its_session_still_works(asgi_server, tenant_key):
    tenant, _key = tenant_key
    cookie = session_cookie(tenant, role=Membership.Role.OWNER, username="olivia").decode()
    with open_socket(asgi_server, "/ws/v1/live", Cookie=cookie, Origin="http://127.0.0.1") as socket:
        assert receive(socket)["type"] == "snapshot"
