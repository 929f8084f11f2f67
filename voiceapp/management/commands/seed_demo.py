"""Create the demo tenant and everything needed to try the platform (idempotent).

A re-run also brings an existing demo agent's tools and FAQ up to date (voiceapp/demo_backend/content.py
says what it replaces and what it leaves alone); the tools call the demo backend at `--base-url`.
"""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, KnowledgeDocument, Voice
from agents.services import agent_update, knowledge_document_create, knowledge_document_update
from billing.models import CreditBucket, Plan, Subscription
from telephony.models import PhoneNumber
from tenants.models import ApiKey, Membership, Tenant, User
from tenants.services import api_key_create, api_key_revoke, tenant_create
from voiceapp.demo_backend import content
from voiceapp.demo_backend.practice import DEMO_SLUG

STAFF_USERNAME, STAFF_PASSWORD = "admin", "admin-demo-password"
OWNER_USERNAME, OWNER_PASSWORD = "demo", "demo-owner-password"
DEMO_NUMBER = "+15550100001"
DEMO_KEY_NAME = "Demo key"
FAQ_TITLE = "Practice FAQ"

SYSTEM_PROMPT = (
    "You are the receptionist of Demo Dental, a family dental practice. Help callers book, move or cancel "
    "appointments, answer questions from the practice FAQ, and transfer to the front desk when asked for a "
    "person or when you cannot help. Keep answers short: this is a phone call."
)


class Command(BaseCommand):
    help = "Create (or bring back) the demo tenant, its owner login, an agent, a voice, a number and an API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--new-key", action="store_true", help="Revoke the demo API key and issue a new one (shown once)."
        )
        parser.add_argument("--force", action="store_true", help="Allow running with DEBUG off (not for production).")
        parser.add_argument(
            "--base-url",
            help="Where this platform serves HTTP, for the demo tools' URLs (default: what they call now, else "
            f"{content.DEFAULT_BASE_URL}; `make run` passes its HOST and PORT).",
        )

    def handle(self, *args, new_key: bool = False, force: bool = False, base_url: str | None = None, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates logins with known passwords; it refuses to run with DEBUG off.")
        try:
            base_url = content.normal_base_url(base_url) if base_url else None
        except ValueError as exc:
            raise CommandError(f"--base-url: {exc}.") from exc
        with transaction.atomic():
            tenant, owner = self._tenant_and_users()
            self._billing(tenant)
            voice = self._voice()
            agent = self._agent(tenant, voice, base_url)
            number = self._number(tenant, agent)
            secret = self._api_key(tenant, owner, new_key)
        self._report(tenant, agent, number, secret)

    def _user(self, username: str, password: str, **fields) -> User:
        user, created = User.objects.get_or_create(username=username, defaults=fields)
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        return user

    def _tenant_and_users(self) -> tuple[Tenant, User]:
        self._user(STAFF_USERNAME, STAFF_PASSWORD, is_staff=True, is_superuser=True, email="admin@example.com")
        owner = self._user(OWNER_USERNAME, OWNER_PASSWORD, email="owner@demo-dental.example", first_name="Dana")
        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            tenant = tenant_create(name="Demo Dental", slug=DEMO_SLUG, owner=owner)
        Membership.objects.get_or_create(tenant=tenant, user=owner, defaults={"role": Membership.Role.OWNER})
        return tenant, owner

    def _billing(self, tenant: Tenant) -> None:
        plan, _ = Plan.objects.get_or_create(
            slug="starter",
            defaults={
                "name": "Starter",
                "monthly_fee": Decimal("49.00"),
                "included_minutes": 500,
                "price_per_minute": Decimal("0.0500"),
                "max_concurrent_calls": 5,
                "api_rate_limit_per_minute": settings.API_RATE_LIMIT_PER_MINUTE,
                "api_burst_limit": settings.API_BURST_LIMIT,
                "is_default": not Plan.objects.filter(is_default=True).exists(),
            },
        )
        Subscription.objects.get_or_create(tenant=tenant, defaults={"plan": plan, "started_at": timezone.now()})
        if not CreditBucket.objects.for_tenant(tenant).filter(source=CreditBucket.Source.PROMOTION).exists():
            CreditBucket.objects.create(
                tenant=tenant,
                source=CreditBucket.Source.PROMOTION,
                seconds_total=60 * 60,
                seconds_remaining=60 * 60,
                valid_from=timezone.now(),
            )

    def _voice(self) -> Voice:
        voice, _ = Voice.objects.get_or_create(
            tenant=None,
            provider=Voice.Provider.CHATTERBOX,
            provider_voice_id=settings.VOICE_PIPELINE_DEFAULTS["tts"]["default_voice_id"],
            defaults={"name": "Default female", "description": "The platform's default voice."},
        )
        return voice

    def _agent(self, tenant: Tenant, voice: Voice, base_url: str | None) -> Agent:
        agent, created = (
            Agent.objects.for_tenant(tenant)
            .alive()
            .get_or_create(
                tenant=tenant,
                name="Appointment Scheduler",
                defaults={
                    "description": "Books, moves and cancels appointments and answers the practice FAQ.",
                    "voice": voice,
                    "system_prompt": SYSTEM_PROMPT,
                    "greeting_message": "Thank you for calling Demo Dental. How can I help you today?",
                    "voicemail_message": "Hello, this is Demo Dental calling about your appointment. Please call us back.",
                    "tools": content.tools(base_url or content.DEFAULT_BASE_URL),
                    "transfer_targets": [
                        {
                            "name": "Front desk",
                            "destination": "ext:1001",
                            "type": "warm",
                            "description": "Reception staff",
                        }
                    ],
                },
            )
        )
        if not created:
            self._refresh_tools(agent, base_url)
        self._faq(agent)
        return agent

    def _faq(self, agent: Agent) -> None:
        """The practice FAQ, added through the knowledge services (so it is indexed), or brought up to date."""
        document = KnowledgeDocument.objects.for_tenant(agent.tenant).filter(agent=agent, title=FAQ_TITLE).first()
        if document is None:
            knowledge_document_create(agent=agent, title=FAQ_TITLE, content=content.FAQ)
        elif (faq := content.refreshed_faq(document.content)) is not None:
            knowledge_document_update(document=document, content=faq)

    def _refresh_tools(self, agent: Agent, base_url: str | None) -> None:
        """Bring the demo's tools up to date; tools the user added or pointed elsewhere stay as they are."""
        base = base_url or content.base_url_in_use(agent.tools) or content.DEFAULT_BASE_URL
        tools = content.merged_tools(agent.tools, content.tools(base))
        if tools != agent.tools:
            agent_update(agent=agent, tools=tools)

    def _number(self, tenant: Tenant, agent: Agent) -> PhoneNumber:
        # A number is unique across tenants: look for it everywhere, and refuse one another tenant holds.
        number, _ = PhoneNumber.objects.dangerously_unscoped().get_or_create(
            e164=DEMO_NUMBER, defaults={"tenant": tenant, "agent": agent, "friendly_name": "Main line"}
        )
        if number.tenant_id != tenant.pk:
            raise CommandError(f"{DEMO_NUMBER} already belongs to tenant {number.tenant}; not touching it.")
        return number

    def _api_key(self, tenant: Tenant, owner: User, new_key: bool) -> str | None:
        existing = ApiKey.objects.for_tenant(tenant).usable().filter(name=DEMO_KEY_NAME).first()
        if existing is not None and not new_key:
            return None
        if existing is not None:
            api_key_revoke(api_key=existing, actor_user=owner)
        return api_key_create(
            tenant=tenant, name=DEMO_KEY_NAME, scopes=["read", "write", "admin"], created_by=owner
        ).secret

    def _report(self, tenant: Tenant, agent: Agent, number: PhoneNumber, secret: str | None) -> None:
        key = ApiKey.objects.for_tenant(tenant).usable().filter(name=DEMO_KEY_NAME).first()
        lines = [
            "Demo data is ready.",
            f"  Staff admin:   /admin/  user {STAFF_USERNAME!r}  password {STAFF_PASSWORD!r}",
            "  Dashboard:     /  (sign in as the tenant owner; place a test call from the agent's page)",
            f"  Tenant owner:  user {OWNER_USERNAME!r}  password {OWNER_PASSWORD!r}  (tenant {tenant.name!r}, slug {tenant.slug!r})",
            f"  Agent:         {agent.name} ({agent.pk})",
            f"  Phone number:  {number.e164} -> {agent.name}",
            f"  Demo backend:  {self._backend_url(agent)}  (the demo practice's bookings; DEBUG only)",
        ]
        if secret:
            lines.append(f"  API key:       {secret}   <- shown once; keep it (X-API-Key header)")
        elif key is not None:
            lines.append(f"  API key:       {key.prefix}… (issued earlier; run `seed_demo --new-key` for a new one)")
        self.stdout.write(self.style.SUCCESS(lines[0]))
        self.stdout.write("\n".join(lines[1:]))
        if not settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS:
            self.stdout.write(
                self.style.WARNING(
                    "  INTEGRATION_ALLOW_PRIVATE_NETWORKS is off: the demo's tools cannot reach a demo backend on a "
                    "loopback or private address (the gateway refuses it)."
                )
            )

    @staticmethod
    def _backend_url(agent: Agent) -> str:
        return f"{content.base_url_in_use(agent.tools) or content.DEFAULT_BASE_URL}{content.DEMO_PATH}"
