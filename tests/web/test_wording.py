"""Item 12's wording and consistency fixes that are not a page's layout: credential checks, the overview's
empty state, the live page's other calls, the post-call analysis of a call nobody was served on."""

import http.server
import socket
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import analysis
from calls.models import Call, ToolCall
from calls.state_machine import CallStatus
from integrations import netguard, verification
from integrations.models import ProviderCredential
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def private_network(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True
    netguard.forget()
    yield
    netguard.forget()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.fixture
def failing_backend():
    """A local HTTP server that answers every request 503 (the provider is up, but failing)."""

    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": "maintenance"}'
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/check"
    server.shutdown()
    server.server_close()


# --- credential checks: "could not reach" vs "did not accept" -------------------------------------


def test_an_unreachable_provider_is_could_not_reach_not_did_not_accept(web_client, settings, private_network):
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{closed_port()}"

    response = web_client.post(
        "/developers/credentials/new/?provider=anthropic",
        {"name": "LLM_KEY", "api_key": "fake-ant-api03-unreachable-0123456789abcdef"},
    )

    assert response.status_code == 400
    [error] = response.context["form"].non_field_errors()
    assert error.startswith("Could not reach Anthropic: ")
    assert "did not accept" not in response.content.decode()


def test_a_provider_failing_itself_is_could_not_check(web_client, failing_backend, private_network):
    response = web_client.post(
        "/developers/credentials/new/?provider=http",
        {"name": "CRM_TOKEN", "value": "tok_0123456789abcdef", "check_url": failing_backend},
    )

    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Could not check the credential: the check URL answered 503 Service Unavailable: maintenance"
    ]


def test_reverifying_a_stored_credential_whose_provider_is_unreachable_says_so(
    web_client, tenant, settings, private_network
):
    credential = factories.ProviderCredentialFactory(tenant=tenant, name="LLM_KEY", provider="anthropic")
    settings.ANTHROPIC_BASE_URL = f"http://127.0.0.1:{closed_port()}"

    response = web_client.post(f"/developers/credentials/{credential.pk}/verify/", follow=True)

    html = response.content.decode()
    assert "LLM_KEY: Could not reach Anthropic: " in html
    assert "LLM_KEY: Anthropic refused" not in html and "did not accept" not in html
    credential.refresh_from_db()
    assert credential.verification == ProviderCredential.Verification.FAILED


@pytest.mark.parametrize(
    ("ok", "message", "said"),
    [
        (True, "200 OK", "Anthropic accepted the credential."),
        (
            False,
            "401 Unauthorized: invalid x-api-key",
            "Anthropic did not accept the credential: 401 Unauthorized: invalid x-api-key",
        ),
        (False, "Could not reach Anthropic: timed out", "Could not reach Anthropic: timed out"),
        (False, "529 : overloaded_error", "Could not check the credential: Anthropic answered 529 : overloaded_error"),
        (False, "429 Too Many Requests", "Could not check the credential: Anthropic answered 429 Too Many Requests"),
        (None, "Not checked: the secret has no check_url.", "Not checked: the secret has no check_url."),
    ],
)
def test_the_verdict_says_refused_only_when_the_provider_refused(ok, message, said):
    assert verification.verdict("anthropic", ok, message) == said


# --- the overview's empty state ---------------------------------------------------------------------


def test_the_overview_does_not_ask_to_assign_a_number_when_one_is_assigned(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550100100")

    html = web_client.get("/").content.decode()

    assert "No calls yet" in html
    assert "Assign a number" not in html
    assert "Call +15550100100 and Front desk answers" in html
    assert f'href="/agents/{agent.pk}/"' in html


def test_the_overview_asks_to_assign_a_number_when_none_is(web_client, tenant):
    factories.AgentFactory(tenant=tenant)

    assert "Assign a number to an agent" in web_client.get("/").content.decode()


# --- the live page ------------------------------------------------------------------------------------


def test_the_live_page_lists_the_watched_call_only_once(web_client, tenant):
    watched = factories.CallFactory(tenant=tenant, status=CallStatus.CONVERSING)
    other = factories.CallFactory(tenant=tenant, status=CallStatus.CONVERSING)

    response = web_client.get(f"/live/{watched.pk}/")

    assert [call.pk for call in response.context["active_calls"]] == [other.pk]
    html = response.content.decode()
    others = html[html.index('id="active-title"') :]
    assert f'data-call-id="{watched.pk}"' not in others and f'data-call-id="{other.pk}"' in others


def test_watching_the_only_call_says_there_are_no_other_calls(web_client, tenant):
    watched = factories.CallFactory(tenant=tenant, status=CallStatus.CONVERSING)

    html = web_client.get(f"/live/{watched.pk}/").content.decode()

    assert "No other calls right now" in html


# --- post-call analysis of a call where nothing worked ---------------------------------------------------


def answered_call(tenant, end_reason=Call.EndReason.CALLER_HANGUP):
    now = timezone.now()
    return factories.CallFactory(
        tenant=tenant,
        status=CallStatus.ENDED,
        started_at=now - timedelta(seconds=60),
        answered_at=now - timedelta(seconds=60),
        ended_at=now,
        duration_seconds=60,
        end_reason=end_reason,
    )


def test_a_call_where_every_request_to_the_backend_failed_is_not_completed(tenant):
    call = answered_call(tenant)
    for status in (ToolCall.Status.FAILED, ToolCall.Status.TIMED_OUT):
        factories.ToolCallFactory(call=call, tool_name="book", status=status, started_at=call.started_at)

    result = analysis.offline_analysis(call, [], {})

    assert result["outcome"] == "requests_failed"
    assert "sentiment" not in result  # the caller said nothing: not "neutral"


def test_one_answered_request_is_enough_for_completed(tenant):
    call = answered_call(tenant)
    factories.ToolCallFactory(call=call, status=ToolCall.Status.FAILED, started_at=call.started_at)
    factories.ToolCallFactory(call=call, status=ToolCall.Status.SUCCEEDED, started_at=call.started_at)
    turn = factories.TranscriptTurnFactory(call=call, speaker="caller", text="Thanks, that is all.")

    result = analysis.offline_analysis(call, [turn], {})

    assert (result["outcome"], result["sentiment"]) == ("completed", "positive")


def test_a_call_that_ended_in_an_error_is_failed_even_with_configured_outcomes(tenant):
    call = answered_call(tenant, end_reason=Call.EndReason.ERROR)
    turn = factories.TranscriptTurnFactory(call=call, speaker="caller", text="I want to book an appointment")
    outcomes = [{"name": "appointment_booked", "description": "booked an appointment"}]

    assert analysis.offline_analysis(call, [turn], {"outcomes": outcomes})["outcome"] == "failed"
