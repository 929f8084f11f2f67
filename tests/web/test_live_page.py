"""The Live calls page: active calls listed, one call watched, tenant-scoped, roles decide the controls."""

from calls.state_machine import CallStatus
from tests import factories


def live_call(tenant, **kwargs):
    return factories.CallFactory(tenant=tenant, status=CallStatus.CONVERSING, **kwargs)


def test_the_live_page_lists_only_our_active_calls(web_client, tenant, other_tenant):
    ours = live_call(tenant, from_number="+15550100077")
    theirs = live_call(other_tenant, from_number="+15550100088")
    response = web_client.get("/live/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-call-id="{ours.pk}"' in html and "+15550100077" in html
    assert str(theirs.pk) not in html and "+15550100088" not in html
    assert 'data-ws-path="/ws/v1/live"' in html
    assert "<title>Live calls · Voice by aiConnected</title>" in html


def test_no_active_calls_shows_the_empty_state(web_client, tenant):
    html = web_client.get("/live/").content.decode()
    assert "No calls right now" in html
    assert "data-live-empty>" in html  # shown (not hidden)


def test_watching_a_call_renders_its_socket_and_supervisor_controls(web_client, tenant):
    call = live_call(tenant)
    html = web_client.get(f"/live/{call.pk}/").content.decode()
    assert f'data-ws-path="/ws/v1/live/calls/{call.pk}"' in html
    assert 'data-testid="live-end-call"' in html and 'data-testid="live-transfer"' in html


def test_a_viewer_watches_without_controls(viewer_client, tenant):
    call = live_call(tenant)
    response = viewer_client.get(f"/live/{call.pk}/")
    assert response.status_code == 200
    assert 'data-testid="supervisor-controls"' not in response.content.decode()


def test_another_tenants_call_is_not_found(web_client, other_tenant):
    theirs = live_call(other_tenant)
    assert web_client.get(f"/live/{theirs.pk}/").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, db):
    response = client.get("/live/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/?next=/live/"
