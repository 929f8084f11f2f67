"""factory_boy factories for every model; each builds a valid, tenant-consistent row."""

import hashlib
import secrets
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

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
from integrations import vault
from integrations.models import ProviderCredential, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks import services as webhook_services
from integrations.webhooks.signing import new_message_id
from telephony.models import GoToConnection, PhoneNumber
from tenants.models import ApiKey, AuditLog, Membership, Tenant, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.OWNER


class ApiKeyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiKey

    tenant = factory.SubFactory(TenantFactory)
    name = "Test key"
    prefix = factory.LazyFunction(lambda: "vk_live_" + secrets.token_hex(4))
    key_hash = factory.LazyFunction(lambda: hashlib.sha256(secrets.token_bytes(16)).hexdigest())
    scopes = factory.LazyFunction(lambda: ["read", "write"])


class AuditLogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AuditLog

    tenant = factory.SubFactory(TenantFactory)
    action = "agent.update"
    actor_label = "tester"


class VoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Voice

    tenant = None
    name = factory.Sequence(lambda n: f"Voice {n}")
    provider = Voice.Provider.CHATTERBOX
    provider_voice_id = factory.Sequence(lambda n: f"voice_{n}")


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    system_prompt = "You are a helpful receptionist."
    greeting_message = "Hello, how can I help?"


class KnowledgeDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeDocument

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.SelfAttribute("agent.tenant")
    title = factory.Sequence(lambda n: f"FAQ {n}")
    content = "Q: When are you open? A: Monday to Friday, 9 to 5."


class KnowledgeChunkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KnowledgeChunk

    document = factory.SubFactory(KnowledgeDocumentFactory)
    tenant = factory.SelfAttribute("document.tenant")
    agent = factory.SelfAttribute("document.agent")
    position = factory.Sequence(lambda n: n)
    text = "Q: When are you open? A: Monday to Friday, 9 to 5."
    question = "When are you open?"
    answer = "Monday to Friday, 9 to 5."


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber

    tenant = factory.SubFactory(TenantFactory)
    e164 = factory.Sequence(lambda n: f"+1555{n:07d}")
    agent = factory.SubFactory(AgentFactory, tenant=factory.SelfAttribute("..tenant"))


class GoToConnectionFactory(factory.django.DjangoModelFactory):
    """A tenant's GoTo grant as the consent leaves it, without tokens (tests that need them seal their own)."""

    class Meta:
        model = GoToConnection

    tenant = factory.SubFactory(TenantFactory)
    account_key = factory.Sequence(lambda n: f"{4000000 + n}")
    organization_id = factory.Sequence(lambda n: f"org-{n}")
    extension = factory.Sequence(lambda n: f"{1000 + n}")
    line_id = factory.Sequence(lambda n: f"line-{n}")
    principal = factory.Sequence(lambda n: f"admin{n}@example.com")
    connected_at = factory.LazyFunction(timezone.now)


class CallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Call

    tenant = factory.SubFactory(TenantFactory)
    agent = factory.SubFactory(AgentFactory, tenant=factory.SelfAttribute("..tenant"))
    direction = Call.Direction.INBOUND
    from_number = "+15550000001"
    to_number = "+15550000002"
    started_at = factory.LazyFunction(timezone.now)


class TranscriptTurnFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TranscriptTurn

    call = factory.SubFactory(CallFactory)
    tenant = factory.SelfAttribute("call.tenant")
    turn_number = factory.Sequence(lambda n: n + 1)
    speaker = TranscriptTurn.Speaker.CALLER
    text = "I'd like to book an appointment."
    started_at = factory.LazyFunction(timezone.now)


class CallEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallEvent

    call = factory.SubFactory(CallFactory)
    tenant = factory.SelfAttribute("call.tenant")
    sequence = factory.Sequence(lambda n: n + 1)
    event_type = CallEvent.Type.CALL_RINGING
    occurred_at = factory.LazyFunction(timezone.now)


class ToolCallFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ToolCall

    call = factory.SubFactory(CallFactory)
    tenant = factory.SelfAttribute("call.tenant")
    tool_name = "check_availability"
    arguments = factory.LazyFunction(lambda: {"date": "2026-11-23"})
    started_at = factory.LazyFunction(timezone.now)


class RecordingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Recording

    call = factory.SubFactory(CallFactory)
    tenant = factory.SelfAttribute("call.tenant")
    file = factory.django.FileField(filename="call.wav", data=b"RIFF")


class PlanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Plan

    name = factory.Sequence(lambda n: f"Plan {n}")
    slug = factory.Sequence(lambda n: f"plan-{n}")
    monthly_fee = Decimal("49.00")
    included_minutes = 500
    price_per_minute = Decimal("0.0500")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    tenant = factory.SubFactory(TenantFactory)
    plan = factory.SubFactory(PlanFactory)
    started_at = factory.LazyFunction(timezone.now)


class UsageRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageRecord

    tenant = factory.SubFactory(TenantFactory)
    period_start = factory.LazyFunction(timezone.now)
    period_end = factory.LazyAttribute(lambda u: u.period_start + timedelta(minutes=2))
    quantity = 90
    billable_quantity = 120
    amount = Decimal("0.1000")


class CreditBucketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreditBucket

    tenant = factory.SubFactory(TenantFactory)
    seconds_total = 30000
    seconds_remaining = 30000
    valid_from = factory.LazyFunction(timezone.now)


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    tenant = factory.SubFactory(TenantFactory)
    number = factory.Sequence(lambda n: f"INV-{n:06d}")
    period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    period_end = factory.LazyFunction(timezone.now)


class ProviderCredentialFactory(factory.django.DjangoModelFactory):
    """A credential encrypted through the vault; pass `secret={...}` to choose the plaintext."""

    class Meta:
        model = ProviderCredential

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"CREDENTIAL_{n}")
    provider = ProviderCredential.Provider.ANTHROPIC
    secret = factory.LazyFunction(lambda: {"api_key": "fake-ant-test-" + secrets.token_hex(16)})
    verification = ProviderCredential.Verification.VERIFIED
    verified_at = factory.LazyFunction(timezone.now)

    @classmethod
    def _create(cls, model_class, *args, secret, **kwargs):
        credential = model_class(*args, **kwargs)
        vault.seal(credential, secret)  # after the id exists: it is bound into the ciphertext
        credential.save(force_insert=True)
        return credential


class UsageAggregateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageAggregate

    tenant = factory.SubFactory(TenantFactory)
    day = factory.LazyFunction(lambda: timezone.now().date())
    calls = 2
    seconds = 150
    billable_seconds = 180
    amount = Decimal("0.1500")


class UsageReportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageReport

    tenant = factory.SubFactory(TenantFactory)
    day = factory.Sequence(lambda n: (timezone.now() - timedelta(days=n + 1)).date())
    file = factory.django.FileField(filename="usage.csv", data=b"date,agent_id,agent_name,calls,seconds\n")
    rows = 0


class UsageAlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UsageAlert

    tenant = factory.SubFactory(TenantFactory)
    kind = UsageAlert.Kind.INCLUDED_MINUTES
    threshold = 80
    period = factory.Sequence(lambda n: f"2026-{n % 12 + 1:02d}-{n}")
    used_seconds = 24000
    allowance_seconds = 30000


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An endpoint with sealed signing secrets; pass `secret="whsec_..."` to choose the current one."""

    class Meta:
        model = WebhookEndpoint

    tenant = factory.SubFactory(TenantFactory)
    url = factory.Sequence(lambda n: f"https://hooks.example.com/{n}")
    event_types = factory.LazyFunction(lambda: ["*"])
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    @classmethod
    def _create(cls, model_class, *args, secret, **kwargs):
        endpoint = model_class(*args, **kwargs)
        webhook_services._seal(endpoint, {"current": secret})  # the id exists already: it is bound into it
        endpoint.save(force_insert=True)
        return endpoint


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookDelivery

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    tenant = factory.SelfAttribute("endpoint.tenant")
    message_id = factory.LazyFunction(new_message_id)
    event_type = "call.ended"
    body = '{"type":"call.ended","timestamp":"2026-11-22T10:30:00Z","data":{}}'
    status = WebhookDelivery.Status.FAILED
    attempts = 1
    cycle_attempts = 1


class WebhookAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WebhookAttempt

    delivery = factory.SubFactory(WebhookDeliveryFactory)
    tenant = factory.SelfAttribute("delivery.tenant")
    number = factory.Sequence(lambda n: n + 1)
    started_at = factory.LazyFunction(timezone.now)
    duration_ms = 120
    outcome = WebhookAttempt.Outcome.HTTP_ERROR
    status_code = 500
