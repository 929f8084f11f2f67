"""Property-based run of the published OpenAPI schema against a live server (schemathesis).

Every operation of /v1/schema gets generated requests, valid (positive) and invalid (negative), all
authenticated with an admin API key. Each response must be no 5xx, a status code the operation
documents, a documented content type, and a body that matches the documented schema. Operations with
path parameters are also driven at the objects seeded below, so the 2xx paths run, not only 404s.

Deterministic for CI: hypothesis is derandomized and keeps no example database. Failures are
collected (one per operation and check) and reported together at the end, with the request as curl.
"""

from collections import Counter
from datetime import timedelta

import pytest
import requests
import schemathesis
from django.core.files.base import ContentFile
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.errors import FailureGroup
from schemathesis.generation import GenerationMode

from calls import services as call_services
from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from calls.state_machine import CallStatus
from integrations.models import BackendService
from tenants.services import api_key_create
from tests import factories
from tests.telephony import fake_twilio

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]
EXAMPLES_PER_MODE = 20  # x2 modes: 40 generated cases per operation
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
HYPOTHESIS_SETTINGS = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
    suppress_health_check=list(HealthCheck),
)
# DELETE runs last so the other operations still see the seeded objects, children before their parent
# (an agent's document before the agent).
METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}


@pytest.fixture
def seeded(transactional_db):
    """A tenant on a plan with no practical rate limit, with an agent, a voice, a number and a live call."""
    tenant = factories.TenantFactory(name="Schema Dental", slug="schema-dental")
    plan = factories.PlanFactory(api_rate_limit_per_minute=10**9, api_burst_limit=10**6, max_concurrent_calls=10**6)
    factories.SubscriptionFactory(tenant=tenant, plan=plan)
    voice = factories.VoiceFactory(tenant=tenant, name="House voice")
    factories.VoiceFactory(tenant=None, name="Platform voice")
    agent = factories.AgentFactory(
        tenant=tenant,
        name="Receptionist",
        voice=voice,
        transfer_targets=[{"name": "Front desk", "destination": "ext:1001"}],
    )
    doomed_agent = factories.AgentFactory(tenant=tenant, name="To be deleted")
    document = factories.KnowledgeDocumentFactory(agent=agent, title="Opening hours")
    doomed_document = factories.KnowledgeDocumentFactory(agent=doomed_agent, title="Old prices")
    number = factories.PhoneNumberFactory(tenant=tenant, agent=agent, e164="+15550100001")

    call = call_services.call_create(
        tenant=tenant,
        agent=agent,
        direction=Call.Direction.INBOUND,
        from_number="+15557770001",
        to_number=number.e164,
        phone_number=number,
    )
    for status in (CallStatus.RINGING, CallStatus.CONNECTED, CallStatus.CONVERSING):
        call = call_services.call_transition(call=call, to_status=status)
    start = timezone.now()
    lines = [
        ("agent", "Thanks for calling Schema Dental, how can I help?"),
        ("caller", "I'd like to book a cleaning next week."),
        ("agent", "Sure, let me check availability."),
        ("caller", "Tuesday morning would be best."),
    ]
    turns = [
        factories.TranscriptTurnFactory(
            call=call,
            turn_number=n,
            speaker=speaker,
            text=text,
            confidence=0.93 if speaker == "caller" else None,
            started_at=start + timedelta(seconds=5 * n),
            ended_at=start + timedelta(seconds=5 * n + 4),
        )
        for n, (speaker, text) in enumerate(lines, start=1)
    ]
    call_services.call_event_record(
        call=call, event_type=CallEvent.Type.TRANSCRIPT_TURN, payload={"turn_number": 1, "speaker": "agent"}
    )
    factories.ToolCallFactory(
        call=call,
        turn=turns[2],
        tool_name="check_availability",
        arguments={"date": "2026-11-24"},
        result={"slots": ["09:00", "10:30"]},
        status=ToolCall.Status.SUCCEEDED,
        http_status=200,
        started_at=start + timedelta(seconds=16),
        ended_at=start + timedelta(seconds=17),
        duration_ms=812,
    )
    factories.RecordingFactory(call=call, file=ContentFile(b"RIFF" + bytes(range(256)) * 8, name="seeded.wav"))
    # An ended call too, so it is metered and /v1/usage has a row.
    ended = call_services.call_create(
        tenant=tenant, agent=agent, direction=Call.Direction.INBOUND, from_number="+15557770002", to_number=number.e164
    )
    for status in (CallStatus.RINGING, CallStatus.CONNECTED, CallStatus.ENDED):
        ended = call_services.call_transition(call=ended, to_status=status)
    assert TranscriptTurn.objects.for_tenant(tenant).filter(call=call).count() == len(lines)

    credential = factories.ProviderCredentialFactory(
        tenant=tenant, name="TICKETING_TOKEN", provider="http", secret={"value": "seed-token-0123456789"}
    )
    twilio = {"account_sid": fake_twilio.ACCOUNT_SID, "auth_token": fake_twilio.AUTH_TOKEN}  # for the numbers import
    factories.ProviderCredentialFactory(tenant=tenant, name="TWILIO", provider="twilio", secret=twilio)
    doomed_credential = factories.ProviderCredentialFactory(
        tenant=tenant, name="DOOMED", provider="http", secret={"value": "doomed-token-0123456789"}
    )
    backend = BackendService.objects.create(tenant=tenant, name="crm", url="https://crm.example.com/api")
    doomed_backend = BackendService.objects.create(tenant=tenant, name="old-crm", url="https://old.example.com/api")
    webhook = factories.WebhookEndpointFactory(tenant=tenant, url="https://hooks.example.com/schema")
    doomed_webhook = factories.WebhookEndpointFactory(tenant=tenant, url="https://hooks.example.com/old")
    delivery = factories.WebhookDeliveryFactory(endpoint=webhook)
    factories.WebhookAttemptFactory(delivery=delivery, number=1)
    report = factories.UsageReportFactory(tenant=tenant)
    key = api_key_create(tenant=tenant, name="schemathesis", scopes=["read", "write", "admin"])
    spare_key = api_key_create(tenant=tenant, name="to be revoked", scopes=["read"])
    return {
        "secret": key.secret,
        # Known ids per path parameter: generated UUIDs only ever reach 404s.
        "path_parameters": {
            "agent_id": str(agent.pk),
            "document_id": str(document.pk),
            "call_id": str(call.pk),
            "number_id": str(number.pk),
            "key_id": str(spare_key.api_key.pk),
            "credential_id": str(credential.pk),
            "service_id": str(backend.pk),
            "webhook_id": str(webhook.pk),
            "delivery_id": str(delivery.pk),
            "report_id": str(report.pk),
        },
        "delete_path_parameters": {
            "agent_id": str(doomed_agent.pk),
            "document_id": str(doomed_document.pk),
            "key_id": str(spare_key.api_key.pk),
            "credential_id": str(doomed_credential.pk),
            "service_id": str(doomed_backend.pk),
            "webhook_id": str(doomed_webhook.pk),
        },
        # Valid bodies the schema alone cannot describe (E.164 numbers, ids that exist).
        "bodies": {
            "calls_create": {"agent_id": str(agent.pk), "to": "+15557770003", "metadata": {"customer_name": "Ada"}},
            "calls_transfer": {"type": "warm", "target": "Front desk", "context": "Wants a cleaning."},
            "agents_documents_create": {"title": "Parking", "content": "Free parking behind the building."},
            "agents_documents_update": {"is_active": True, "source_url": "https://example.com/hours"},
            "numbers_create": {"e164": "+15550100002", "friendly_name": "Second line", "agent_id": str(agent.pk)},
            "numbers_update": {"agent_id": str(agent.pk), "friendly_name": "Main line"},
            "credentials_create": {
                "name": "CRM_TOKEN",
                "provider": "http",
                "secret": {"value": "crm-token-0123456789"},
            },
            "credentials_update_secret": {"secret": {"value": "rotated-token-0123456789"}},
            "webhooks_create": {"url": "https://hooks.example.com/new", "event_types": ["call.ended", "call.analyzed"]},
            "webhooks_update": {"description": "Main CRM", "enabled": True},
            "webhooks_replay": {"since": "2026-01-01T00:00:00Z"},
            "webhooks_rotate_secret": {"overlap_hours": 1},
        },
    }


def _strategy(operation, mode, seeded, headers):
    """Generated cases, plus cases aimed at the seeded objects (and, positively, with a known-good body)."""
    strategies = [operation.as_strategy(generation_mode=mode, headers=headers)]
    names = {p.name for p in operation.path_parameters}
    known = seeded["delete_path_parameters"] if operation.method.upper() == "DELETE" else seeded["path_parameters"]
    path_parameters = {name: known[name] for name in names if name in known}
    if path_parameters:
        strategies.append(operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=path_parameters))
    body = seeded["bodies"].get(operation.definition.raw.get("operationId"))
    if body is not None and mode == GenerationMode.POSITIVE:
        strategies.append(
            operation.as_strategy(
                generation_mode=mode,
                headers=headers,
                path_parameters=path_parameters or None,
                body=body,
                media_type="application/json",  # the known bodies are JSON (some operations also take multipart)
            )
        )
    return st.one_of(*strategies)


def _exercise(operation, mode, strategy, base_url, session, statuses, failures) -> None:
    """Run the generated cases of one operation in one mode, recording the first failure per check."""

    @HYPOTHESIS_SETTINGS
    @given(case=strategy)
    def run(case):
        response = case.call(base_url=base_url, session=session, timeout=30)
        statuses.setdefault(operation.label, Counter())[response.status_code] += 1
        try:
            case.validate_response(
                response, checks=CHECKS, transport_kwargs={"base_url": base_url, "session": session, "timeout": 30}
            )
        except FailureGroup as group:
            titles = tuple(sorted({failure.title for failure in group.exceptions}))
            failures.setdefault((operation.label, titles), f"[{mode.value}] {group}")

    run()


@pytest.fixture
def twilio_api(settings):  # pytest-django's settings (this module's `settings` name is Hypothesis')
    """The fake Twilio with one number, where the numbers import asks."""
    fake = fake_twilio.FakeTwilio().start()
    fake.add_number("+15550100002", "Schema line")
    settings.TWILIO_API_BASE_URL = fake.url
    yield fake
    fake.stop()


@pytest.fixture
def no_background_embedding(monkeypatch):
    """Documents stay pending: the embedding thread would write to the shared in-memory SQLite database while
    the live server's requests do, and shared-cache SQLite refuses such a table lock at once ("database table
    is locked") instead of waiting. The embedding has its own tests (tests/knowledge)."""
    monkeypatch.setattr("agents.knowledge.runner.RUNNER.submit", lambda tenant_id, document_id: None)


@pytest.mark.fuzz
def test_api_conforms_to_its_openapi_schema(live_server, seeded, twilio_api, no_background_embedding):
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(f"{live_server.url}/v1/schema?format=json", config=config, timeout=30)
    headers = {"X-API-Key": seeded["secret"]}
    operations = [result.ok() for result in schema.get_all_operations()]
    operations.sort(
        key=lambda op: (
            METHOD_ORDER.get(op.method.upper(), 9),
            -op.path.count("{") if op.method.upper() == "DELETE" else 0,
            op.path,
        )
    )
    assert len(operations) >= 20, [op.label for op in operations]

    session = requests.Session()
    # Django's development server answers keep-alive requests ~40 ms late (delayed ACK): one connection each.
    session.headers["Connection"] = "close"
    failures: dict[tuple[str, tuple[str, ...]], str] = {}
    statuses: dict[str, Counter] = {}
    for operation in operations:
        for mode in MODES:
            strategy = _strategy(operation, mode, seeded, headers)
            _exercise(operation, mode, strategy, live_server.url, session, statuses, failures)

    tally = "\n".join(f"  {label}: {dict(sorted(counts.items()))}" for label, counts in statuses.items())
    print(f"status codes per operation:\n{tally}")
    assert not failures, f"{len(failures)} schema conformance failure(s):\n\n" + "\n\n".join(
        f"=== {label}: {', '.join(titles)}\n{report}" for (label, titles), report in failures.items()
    )
    # Every operation answered, and succeeded at least once: the run did not only exercise error paths.
    not_succeeded = [op.label for op in operations if not any(200 <= code < 300 for code in statuses.get(op.label, ()))]
    assert not not_succeeded, f"never answered 2xx: {not_succeeded}\n{tally}"
