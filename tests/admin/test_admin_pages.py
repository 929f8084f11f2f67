"""The staff admin: every page renders for staff and for nobody else; writes go through the services."""

import hashlib
import re
import uuid
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from agents.models import Agent, KnowledgeChunk, KnowledgeDocument, Voice
from billing.models import (
    CreditBucket,
    Invoice,
    Plan,
    Subscription,
    UsageAggregate,
    UsageAlert,
    UsageRecord,
    UsageReport,
)
from calls.models import Call, CallEvent, Recording, ToolCall, TranscriptTurn
from telephony.models import GoToConnection, PhoneNumber
from tenants.models import ApiKey, AuditLog, IdempotencyKey, Membership, Tenant, User
from tests import factories

PLATFORM_APPS = {"tenants", "agents", "telephony", "calls", "billing"}


def _periodic_task():
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(name="End stale calls", task="calls.tasks.end_stale", interval=every_minute)


def _idempotency_key():
    return IdempotencyKey.objects.create(
        tenant=factories.TenantFactory(),
        key=str(uuid.uuid4()),
        request_method="POST",
        request_path="/v1/calls",
        request_fingerprint="0" * 64,
        expires_at=timezone.now() + timedelta(hours=24),
    )


FACTORIES = {
    User: factories.UserFactory,
    Tenant: factories.TenantFactory,
    Membership: factories.MembershipFactory,
    ApiKey: factories.ApiKeyFactory,
    AuditLog: factories.AuditLogFactory,
    IdempotencyKey: _idempotency_key,
    Voice: factories.VoiceFactory,
    Agent: factories.AgentFactory,
    KnowledgeDocument: factories.KnowledgeDocumentFactory,
    KnowledgeChunk: factories.KnowledgeChunkFactory,
    PhoneNumber: factories.PhoneNumberFactory,
    GoToConnection: factories.GoToConnectionFactory,
    Call: factories.CallFactory,
    TranscriptTurn: factories.TranscriptTurnFactory,
    CallEvent: factories.CallEventFactory,
    ToolCall: factories.ToolCallFactory,
    Recording: factories.RecordingFactory,
    Plan: factories.PlanFactory,
    Subscription: factories.SubscriptionFactory,
    UsageRecord: factories.UsageRecordFactory,
    CreditBucket: factories.CreditBucketFactory,
    Invoice: factories.InvoiceFactory,
    UsageAggregate: factories.UsageAggregateFactory,
    UsageReport: factories.UsageReportFactory,
    UsageAlert: factories.UsageAlertFactory,
    PeriodicTask: _periodic_task,
}

# Rows the platform writes (audit log, idempotency keys, call history, usage): never added by hand.
ADD_FORBIDDEN = {
    AuditLog,
    KnowledgeChunk,
    IdempotencyKey,
    Call,
    TranscriptTurn,
    CallEvent,
    ToolCall,
    Recording,
    UsageRecord,
    UsageAggregate,
    UsageReport,
    UsageAlert,
}
# Nor deleted, and neither are rows that are soft-deleted (tenants, agents) or revoked (API keys) instead;
# a stuck idempotency key may be deleted, so that the client can retry.
DELETE_FORBIDDEN = (ADD_FORBIDDEN - {IdempotencyKey}) | {Tenant, Agent, ApiKey}
# A GoTo grant comes only from the tenant's consent at GoTo (the admin's "Connect GoTo" starts one); staff
# may delete one like any other row (or disconnect it, which keeps the row).
ADD_FORBIDDEN |= {GoToConnection}

PLATFORM_MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label in PLATFORM_APPS), key=lambda m: m._meta.label
)
ADMIN_MODELS = [*PLATFORM_MODELS, PeriodicTask]


def _label(model) -> str:
    return model._meta.label


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def search_term(obj) -> str:
    """A term the object's changelist search finds it by: its UUID, or its name where the key is an integer."""
    if isinstance(obj, User):
        return obj.get_username()
    if isinstance(obj, PeriodicTask):
        return obj.name
    return str(obj.pk)


def management_form(prefix: str, total: int = 0) -> dict:
    return {f"{prefix}-TOTAL_FORMS": total, f"{prefix}-INITIAL_FORMS": total, f"{prefix}-MAX_NUM_FORMS": 1000}


def shown_messages(response) -> list[str]:
    """Messages on the page a followed redirect ended on."""
    return [m.message for m in response.context["messages"]]


# --- Registration and page rendering ---------------------------------------------------------------


def test_every_platform_model_has_an_admin_and_a_factory_here():
    models = {model for label in PLATFORM_APPS for model in apps.get_app_config(label).get_models()}

    assert set(PLATFORM_MODELS) == models
    assert set(FACTORIES) == models | {PeriodicTask}


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=_label)
def test_staff_can_open_every_admin_page(staff_client, model):
    obj = FACTORIES[model]()
    change_url = admin_url(model, "change", obj.pk)

    changelist = staff_client.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert change_url in changelist.content.decode()
    assert staff_client.get(change_url).status_code == 200
    assert staff_client.get(admin_url(model, "add")).status_code == (403 if model in ADD_FORBIDDEN else 200)
    assert staff_client.get(admin_url(model, "delete", obj.pk)).status_code == (
        403 if model in DELETE_FORBIDDEN else 200
    )


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=_label)
def test_changelist_search_finds_the_object_and_only_matches(staff_client, model):
    obj = FACTORIES[model]()
    change_url = admin_url(model, "change", obj.pk)

    found = staff_client.get(admin_url(model, "changelist"), {"q": search_term(obj)})
    missed = staff_client.get(admin_url(model, "changelist"), {"q": "zz-no-such-thing"})

    assert found.status_code == 200
    assert change_url in found.content.decode()
    assert missed.status_code == 200
    assert change_url not in missed.content.decode()


@pytest.mark.parametrize("model", ADMIN_MODELS, ids=_label)
@pytest.mark.parametrize("who", ["anonymous", "tenant_owner"])
def test_non_staff_are_sent_to_the_admin_login(client, owner, model, who):
    obj = FACTORIES[model]()
    if who == "tenant_owner":
        client.force_login(owner)  # owns a tenant, but is_staff=False
    for url in (admin_url(model, "changelist"), admin_url(model, "change", obj.pk), admin_url(model, "add")):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith("/admin/login/?next=")
        assert response.content == b""


@pytest.mark.parametrize("model", PLATFORM_MODELS, ids=_label)
def test_changelist_queries_do_not_grow_with_rows(staff_client, model):
    FACTORIES[model]()
    url = admin_url(model, "changelist")
    staff_client.get(url)  # warm up the session and per-process caches

    few = _count_queries(staff_client, url)
    FACTORIES[model]()
    FACTORIES[model]()
    assert _count_queries(staff_client, url) == few


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_call_changelist_queries_do_not_grow_with_calls(staff_client):
    def add_calls(n):
        for _ in range(n):
            number = factories.PhoneNumberFactory()
            call = factories.CallFactory(tenant=number.tenant, agent=number.agent, phone_number=number)
            factories.TranscriptTurnFactory(call=call, turn_number=1)
            factories.TranscriptTurnFactory(call=call, turn_number=2)

    url = admin_url(Call, "changelist")
    add_calls(2)
    staff_client.get(url)
    with_two = _count_queries(staff_client, url)
    add_calls(8)
    assert _count_queries(staff_client, url) == with_two


# --- Tenants: suspend / reactivate through the audited service -------------------------------------


def test_suspend_and_reactivate_actions_change_status_and_write_audit_rows(
    staff_client, staff_user, tenant, other_tenant
):
    url = admin_url(Tenant, "changelist")

    suspend = {"action": "suspend_tenants", "_selected_action": [tenant.pk, other_tenant.pk]}
    suspended = staff_client.post(url, suspend, follow=True)
    reactivate = {"action": "reactivate_tenants", "_selected_action": [tenant.pk]}
    reactivated = staff_client.post(url, reactivate, follow=True)

    assert shown_messages(suspended) == ["2 tenants suspended."]
    assert shown_messages(reactivated) == ["1 tenant reactivated."]
    tenant.refresh_from_db()
    other_tenant.refresh_from_db()
    assert (tenant.status, other_tenant.status) == (Tenant.Status.ACTIVE, Tenant.Status.SUSPENDED)
    rows = AuditLog.objects.dangerously_unscoped().filter(action__in=["tenant.suspend", "tenant.reactivate"])
    assert sorted((row.tenant.slug, row.action, row.actor_user, row.changes["status"]) for row in rows) == [
        ("acme-dental", "tenant.reactivate", staff_user, ["suspended", "active"]),
        ("acme-dental", "tenant.suspend", staff_user, ["active", "suspended"]),
        ("globex-clinic", "tenant.suspend", staff_user, ["active", "suspended"]),
    ]


def test_tenant_status_is_not_editable_on_the_change_form(staff_client, tenant):
    html = staff_client.get(admin_url(Tenant, "change", tenant.pk)).content.decode()

    assert 'name="status"' not in html
    assert 'name="name"' in html


def test_adding_a_tenant_goes_through_the_service(staff_client):
    data = {"name": "Initech", "slug": "initech", "settings": "{}"}
    data |= management_form("memberships") | management_form("api_keys")

    response = staff_client.post(admin_url(Tenant, "add"), data)

    assert response.status_code == 302
    tenant = Tenant.objects.get(slug="initech")
    assert list(AuditLog.objects.for_tenant(tenant).values_list("action", flat=True)) == ["tenant.create"]


# --- API keys: issued by the service, secret shown once, hash never shown --------------------------


def test_adding_an_api_key_shows_the_secret_once_and_stores_only_its_hash(staff_client, staff_user, tenant):
    data = {
        "tenant": tenant.pk,
        "name": "CRM sync",
        "scopes": ["read", "admin"],
        "expires_at_0": "",
        "expires_at_1": "",
    }

    response = staff_client.post(admin_url(ApiKey, "add"), data, follow=True)

    first_page = response.content.decode()
    secret = re.search(r"Copy this key now, it will not be shown again: (vk_live_[\w-]+)", first_page).group(1)
    key = ApiKey.objects.dangerously_unscoped().get()
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert (key.tenant, key.name, key.scopes, key.prefix, key.created_by) == (
        tenant,
        "CRM sync",
        ["admin", "read"],
        secret[:16],
        staff_user,
    )
    assert AuditLog.objects.for_tenant(tenant).get().action == "api_key.create"
    assert key.key_hash not in first_page
    for url in (admin_url(ApiKey, "changelist"), admin_url(ApiKey, "change", key.pk)):
        html = staff_client.get(url).content.decode()
        assert secret not in html
        assert key.key_hash not in html
        assert "key_hash" not in html


def test_api_key_change_form_shows_prefix_and_scopes_read_only(staff_client):
    key = factories.ApiKeyFactory(scopes=["read"])

    html = staff_client.get(admin_url(ApiKey, "change", key.pk)).content.decode()

    assert key.prefix in html
    assert key.key_hash not in html
    assert 'name="prefix"' not in html
    assert 'name="scopes"' not in html
    assert 'name="name"' in html


def test_add_api_key_form_rejects_no_scopes_without_issuing_a_key(staff_client, tenant):
    data = {"tenant": tenant.pk, "name": "CRM sync", "expires_at_0": "", "expires_at_1": ""}

    response = staff_client.post(admin_url(ApiKey, "add"), data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"scopes": ["This field is required."]}
    assert not ApiKey.objects.dangerously_unscoped().exists()


def test_revoke_action_revokes_through_the_service(staff_client, staff_user, tenant):
    live = factories.ApiKeyFactory(tenant=tenant)
    already = factories.ApiKeyFactory(tenant=tenant, revoked_at="2026-01-01T00:00:00Z")
    url = admin_url(ApiKey, "changelist")

    response = staff_client.post(url, {"action": "revoke_keys", "_selected_action": [live.pk, already.pk]}, follow=True)

    assert shown_messages(response) == ["1 API key revoked."]
    live.refresh_from_db()
    already.refresh_from_db()
    assert live.revoked_at is not None
    assert already.revoked_at.isoformat() == "2026-01-01T00:00:00+00:00"  # revoking twice keeps the first time
    row = AuditLog.objects.for_tenant(tenant).get()
    assert (row.action, row.object_id, row.actor_user) == ("api_key.revoke", str(live.pk), staff_user)


# --- Audit log: append-only -----------------------------------------------------------------------


def test_audit_log_cannot_be_changed_or_deleted(staff_client):
    row = factories.AuditLogFactory(action="agent.update")

    change = staff_client.post(admin_url(AuditLog, "change", row.pk), {"action": "agent.delete"})
    delete = staff_client.post(admin_url(AuditLog, "delete", row.pk), {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    row.refresh_from_db()
    assert row.action == "agent.update"


# --- Calls: read-only records, turns in order -----------------------------------------------------


def test_call_page_lists_turns_in_order_and_status_is_read_only(staff_client):
    call = factories.CallFactory()
    for number in (3, 1, 2):
        factories.TranscriptTurnFactory(call=call, turn_number=number, text=f"spoken as turn {number}")

    html = staff_client.get(admin_url(Call, "change", call.pk)).content.decode()

    positions = [html.index(f"spoken as turn {number}") for number in (1, 2, 3)]
    assert positions == sorted(positions)
    assert 'name="status"' not in html
    assert 'name="started_at' not in html
    assert 'name="metadata"' in html


def test_posting_a_status_to_the_call_form_changes_nothing_but_metadata(staff_client):
    call = factories.CallFactory()
    data = {"status": "ended", "ended_at": "2026-01-01T00:00:00Z", "metadata": '{"note": "checked"}'}
    for prefix in ("turns", "events", "tool_calls", "recordings"):
        data |= management_form(prefix)

    response = staff_client.post(admin_url(Call, "change", call.pk), data)

    assert response.status_code == 302
    call.refresh_from_db()
    assert (call.status, call.ended_at, call.metadata) == (Call.Status.INITIAL, None, {"note": "checked"})


@pytest.mark.parametrize("model", [Call, Tenant, Agent, ApiKey], ids=_label)
def test_records_and_soft_deleted_rows_cannot_be_deleted(staff_client, model):
    obj = FACTORIES[model]()

    response = staff_client.post(admin_url(model, "delete", obj.pk), {"post": "yes"})

    assert response.status_code == 403
    assert model._base_manager.filter(pk=obj.pk).exists()


# --- Agents: model validation shows as form errors ------------------------------------------------


def agent_form(agent, **overrides) -> dict:
    data = {
        "name": agent.name,
        "description": agent.description,
        "status": agent.status,
        "voice": agent.voice_id or "",
        "system_prompt": agent.system_prompt,
        "greeting_message": agent.greeting_message,
        "voicemail_message": agent.voicemail_message,
        "tools": "[]",
        "transfer_targets": "[]",
        "settings": "{}",
        "deleted_at_0": "",
        "deleted_at_1": "",
    }
    return data | management_form("knowledge_documents") | overrides


def test_valid_agent_form_saves(staff_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    tools = '[{"name": "book", "description": "Book a slot", "parameters": {"type": "object"}, "webhook_url": "https://x.test/b"}]'

    response = staff_client.post(admin_url(Agent, "change", agent.pk), agent_form(agent, tools=tools))

    assert response.status_code == 302
    agent.refresh_from_db()
    assert [tool["name"] for tool in agent.tools] == ["book"]


@pytest.mark.parametrize(
    ("tools", "errors"),
    [
        (
            '[{"name": "book"}]',
            [
                "tools[0]: 'description' is a required property",
                "tools[0]: 'parameters' is a required property",
                "tools[0]: 'webhook_url' is a required property",
            ],
        ),
        ("[{not json", ["Enter a valid JSON."]),
    ],
    ids=["schema", "syntax"],
)
def test_invalid_tools_json_is_a_form_error_and_changes_nothing(staff_client, tenant, tools, errors):
    agent = factories.AgentFactory(tenant=tenant)
    before = agent.updated_at

    response = staff_client.post(admin_url(Agent, "change", agent.pk), agent_form(agent, tools=tools, name="Renamed"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"tools": errors}
    name = agent.name
    agent.refresh_from_db()
    assert (agent.name, agent.tools, agent.updated_at) == (name, [], before)


def test_another_tenants_voice_is_a_form_error(staff_client, tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant)
    foreign_voice = factories.VoiceFactory(tenant=other_tenant)

    response = staff_client.post(admin_url(Agent, "change", agent.pk), agent_form(agent, voice=foreign_voice.pk))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"voice": ["This voice belongs to another tenant."]}
    agent.refresh_from_db()
    assert agent.voice is None


def test_platform_voice_can_be_chosen(staff_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    platform_voice = factories.VoiceFactory(tenant=None)

    response = staff_client.post(admin_url(Agent, "change", agent.pk), agent_form(agent, voice=platform_voice.pk))

    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.voice == platform_voice


def test_duplicate_agent_name_in_the_tenant_is_a_form_error(staff_client, tenant):
    factories.AgentFactory(tenant=tenant, name="Reception")
    agent = factories.AgentFactory(tenant=tenant, name="Sales")

    response = staff_client.post(admin_url(Agent, "change", agent.pk), agent_form(agent, name="Reception"))

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == ["An agent with this name already exists."]
    agent.refresh_from_db()
    assert agent.name == "Sales"


def test_knowledge_document_takes_its_agents_tenant_and_duplicates_are_form_errors(staff_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    url = admin_url(KnowledgeDocument, "add")
    data = {"agent": agent.pk, "title": "Opening hours", "content": "Q: Open? A: 9-5.", "is_active": "on"}

    created = staff_client.post(url, data)
    duplicate = staff_client.post(url, data)

    assert created.status_code == 302
    assert KnowledgeDocument.objects.for_tenant(tenant).get().agent == agent
    assert duplicate.status_code == 200
    assert duplicate.context["adminform"].form.non_field_errors() == [
        "Knowledge document with this Tenant, Agent and Title already exists."
    ]
    assert KnowledgeDocument.objects.dangerously_unscoped().count() == 1


def test_knowledge_document_added_inline_on_the_agent_takes_its_tenant(staff_client, tenant):
    agent = factories.AgentFactory(tenant=tenant)
    document = {"title": "Prices", "content": "Q: Cost? A: $50.", "source_url": "", "is_active": "on"}
    data = agent_form(agent) | {f"knowledge_documents-0-{field}": value for field, value in document.items()}
    data["knowledge_documents-TOTAL_FORMS"] = 1
    data["knowledge_documents-INITIAL_FORMS"] = 0

    response = staff_client.post(admin_url(Agent, "change", agent.pk), data)

    assert response.status_code == 302
    saved = KnowledgeDocument.objects.for_tenant(tenant).get()
    assert (saved.agent, saved.title) == (agent, "Prices")


# --- Navigation and filters -----------------------------------------------------------------------


def test_tenant_page_links_to_its_records_and_the_links_work(staff_client, tenant, other_tenant):
    mine = factories.CallFactory(tenant=tenant)
    theirs = factories.CallFactory(tenant=other_tenant)

    html = staff_client.get(admin_url(Tenant, "change", tenant.pk)).content.decode()

    links = re.findall(r'href="([^"]+\?tenant__id__exact=[^"]+)"', html)
    assert len(links) == 7
    assert all(staff_client.get(link.replace("&amp;", "&")).status_code == 200 for link in links)
    calls = staff_client.get(admin_url(Call, "changelist"), {"tenant__id__exact": tenant.pk}).content.decode()
    assert admin_url(Call, "change", mine.pk) in calls
    assert admin_url(Call, "change", theirs.pk) not in calls


@pytest.mark.parametrize("status", ["active", "expired", "revoked"])
def test_api_key_status_filter(staff_client, tenant, status):
    now = timezone.now()
    keys = {
        "active": factories.ApiKeyFactory(tenant=tenant),
        "expired": factories.ApiKeyFactory(tenant=tenant, expires_at=now - timedelta(days=1)),
        "revoked": factories.ApiKeyFactory(tenant=tenant, revoked_at=now),
    }

    html = staff_client.get(admin_url(ApiKey, "changelist"), {"status": status}).content.decode()

    shown = {name for name, key in keys.items() if admin_url(ApiKey, "change", key.pk) in html}
    assert shown == {status}
