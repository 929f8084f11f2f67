"""Create the demo tenant and everything needed to try the platform (idempotent)."""

from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent, KnowledgeDocument, Voice
from billing.models import CreditBucket, Plan, Subscription
from telephony.models import PhoneNumber
from tenants.models import ApiKey, Membership, Tenant, User
from tenants.services import api_key_create, api_key_revoke, tenant_create

DEMO_SLUG = "demo-dental"
STAFF_USERNAME, STAFF_PASSWORD = "admin", "admin-demo-password"
OWNER_USERNAME, OWNER_PASSWORD = "demo", "demo-owner-password"
DEMO_NUMBER = "+15550100001"
DEMO_KEY_NAME = "Demo key"

SYSTEM_PROMPT = (
    "You are the receptionist of Demo Dental, a family dental practice. Help callers book, move or cancel "
    "appointments, answer questions from the practice FAQ, and transfer to the front desk when asked for a "
    "person or when you cannot help. Keep answers short: this is a phone call."
)
TOOLS = [
    {
        "name": "check_availability",
        "description": "List open appointment slots on a given date.",
        "parameters": {
            "type": "object",
            "properties": {"date": {"type": "string", "format": "date", "description": "YYYY-MM-DD"}},
            "required": ["date"],
        },
        "webhook_url": "http://127.0.0.1:9000/tools/check_availability",
        "method": "POST",
        "timeout_seconds": 10,
        "filler": "Let me check the calendar for you.",
    }
]
FAQ = (
    "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM, and Saturday mornings 9 to noon.\n"
    "Q: Where are you? A: 12 Harbour Street, next to the pharmacy, with free parking behind the building.\n"
    "Q: Do you take insurance? A: Yes, most major dental plans; bring your card to the first visit.\n"
    "Q: How much is a check-up? A: A check-up with cleaning is 95 dollars without insurance."
)


class Command(BaseCommand):
    help = "Create (or bring back) the demo tenant, its owner login, an agent, a voice, a number and an API key."

    def add_arguments(self, parser):
        parser.add_argument(
            "--new-key", action="store_true", help="Revoke the demo API key and issue a new one (shown once)."
        )
        parser.add_argument("--force", action="store_true", help="Allow running with DEBUG off (not for production).")

    def handle(self, *args, new_key: bool = False, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError("seed_demo creates logins with known passwords; it refuses to run with DEBUG off.")
        with transaction.atomic():
            tenant, owner = self._tenant_and_users()
            self._billing(tenant)
            voice = self._voice()
            agent = self._agent(tenant, voice)
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

    def _agent(self, tenant: Tenant, voice: Voice) -> Agent:
        agent, _ = (
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
                    "tools": TOOLS,
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
        KnowledgeDocument.objects.get_or_create(
            tenant=tenant, agent=agent, title="Practice FAQ", defaults={"content": FAQ}
        )
        return agent

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
        ]
        if secret:
            lines.append(f"  API key:       {secret}   <- shown once; keep it (X-API-Key header)")
        elif key is not None:
            lines.append(f"  API key:       {key.prefix}… (issued earlier; run `seed_demo --new-key` for a new one)")
        self.stdout.write(self.style.SUCCESS(lines[0]))
        self.stdout.write("\n".join(lines[1:]))
