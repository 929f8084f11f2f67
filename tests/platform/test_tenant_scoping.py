"""No query of a tenant-owned model forgets its tenant: the code is walked, and every bypass is listed here.

A query `<Model>.objects.<method>(...)` of a tenant-owned model must, in the same chain, go through
`for_tenant(...)` or filter on the tenant (`filter(tenant=...)`, `get(tenant_id=...)`, a `Q(tenant=...)`),
create rows (`create`, `bulk_create`), write rows already in hand (`bulk_update`), be `.none()`, or be the
queryset of a `Prefetch(...)` (the parent rows' query is the one checked). Anything else is a finding.

`dangerously_unscoped()` (and `dangerously_unscoped_reads()`) may only be called from a function listed in
ALLOWED_BYPASSES with its reason: adding a bypass means adding a line here, where a reviewer sees it.
The runtime half of the guard (the queryset refuses to be read) is tested in test_tenant_scoping_guard.py.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.apps import apps

from tenants.models import TenantOwnedModel
from tenants.scoping import lookup_pins_tenant

ROOT = Path(__file__).resolve().parents[2]
APPS = ("agents", "billing", "calls", "core", "integrations", "telephony", "tenants", "voice", "voiceapp")
SKIP = {"migrations", "tests", "__pycache__"}
MANAGERS = {"objects", "_default_manager"}
BYPASSES = {"dangerously_unscoped", "dangerously_unscoped_reads"}
WRITES = {"create", "acreate", "bulk_create", "abulk_create", "bulk_update", "abulk_update", "none"}
FILTERS = {
    "filter",
    "complex_filter",
    "get",
    "aget",
    "get_or_create",
    "aget_or_create",
    "update_or_create",
    "aupdate_or_create",
}

# (file, function) -> why this code reads across tenants. "Class.method" for methods, "<module>" at top level.
ADMIN = "the admin is the platform's staff: it lists and counts every tenant's rows"
RETENTION = "retention deletes what is past its age, whoever owns it"
ALLOWED_BYPASSES = {
    # The framework's own
    ("core/admin_base.py", "staff_see_every_tenant"): ADMIN,
    ("tenants/models.py", "TenantOwnedModel._perform_unique_checks"): "uniqueness (key prefix, number) spans tenants",
    ("tenants/models.py", "TenantOwnedModel.validate_constraints"): "unique constraints are checked across tenants",
    # Who is calling: the tenant is not known yet, the credential or the dialled number decides it
    ("tenants/services.py", "api_key_authenticate"): "an API key is found by its hash; the key decides the tenant",
    ("tenants/api/authentication.py", "TenantSessionAuthentication._membership"): "a user's memberships, any tenant",
    ("tenants/realtime.py", "socket_principal"): "a signed-in user's memberships, in any tenant",
    ("tenants/web.py", "memberships_of"): "the dashboard's tenant switcher lists the user's memberships",
    ("tenants/selectors.py", "tenants_for_user"): "the tenants a user belongs to",
    ("telephony/services.py", "inbound_call_accept"): "the dialled number decides the tenant of an inbound call",
    ("telephony/carriers/goto/auth.py", "_locked_refresh"): "the media worker names a GoTo connection by id",
    ("telephony/carriers/goto/grant.py", "connected_accounts"): "the media worker serves every tenant's GoTo lines",
    ("telephony/carriers/twilio/webhooks.py", "voice"): "the called number decides whose auth token signs the webhook",
    ("calls/selectors.py", "call_by_external_id"): "a carrier event names its call by the carrier's id only",
    ("calls/selectors.py", "call_by_id_across_tenants"): "a consult leg cached before its tenant was recorded with it",
    ("calls/services/inbound.py", "inbound_call_start"): "the carrier's call id is unique on the whole platform",
    ("voiceapp/management/commands/seed_demo.py", "Command._number"): "a phone number is unique across tenants",
    # Sweeps and schedulers
    ("calls/services/lifecycle.py", "calls_end_stuck"): "the stuck-call sweep covers every tenant",
    ("calls/services/outbound.py", "calls_claim_due_dials"): "the dialer claims every tenant's due dials",
    ("calls/services/outbound.py", "calls_abandon_undialled"): "the dialer's sweep of dials never made",
    ("calls/postcall.py", "calls_missing_processing"): "the sweep retries every tenant's lost transcript jobs",
    ("agents/knowledge/embedding.py", "documents_dispatch_due"): "the sweep embeds every tenant's due documents",
    ("calls/live_state.py", "rebuild"): "live state is keyed by call id (operator command, a gap in the events)",
    ("calls/live_state.py", "rebuild_all"): "after a Redis loss every tenant's live calls are rebuilt",
    # Metering and billing jobs
    ("billing/services.py", "usage_meter_ended_calls"): "metering covers every tenant's ended calls",
    ("billing/aggregation.py", "usage_aggregate_day"): "the daily aggregation covers the platform",
    # The webhook outbox: batches mix tenants
    ("integrations/webhooks/outbox.py", "deliveries_claim_due"): "the outbox sweeper claims every due delivery",
    ("integrations/webhooks/outbox.py", "deliveries_claim"): "a worker claims a batch of any tenants' deliveries",
    ("integrations/webhooks/delivery.py", "record"): "a delivery batch spans tenants",
    ("integrations/webhooks/delivery.py", "_succeeded"): "a delivery batch spans tenants",
    # Key rotation re-seals the whole vault
    ("integrations/services.py", "credential_reencrypt_all"): "key rotation covers every tenant's credentials",
    ("integrations/services.py", "_credential_reencrypt"): "one credential of the rotation, by id",
    ("integrations/webhooks/services.py", "webhook_endpoints_reencrypt"): "key rotation covers every endpoint",
    ("telephony/carriers/goto/grant.py", "connections_reseal"): "key rotation covers every GoTo connection",
    ("telephony/carriers/goto/grant.py", "_connection_reseal"): "one GoTo connection of the rotation, by id",
    # Retention
    ("calls/retention.py", "_recordings"): RETENTION,
    ("calls/retention.py", "install"): RETENTION,
    ("billing/retention.py", "install"): RETENTION,
    ("integrations/retention.py", "_deliveries"): RETENTION,
    ("tenants/retention.py", "install"): RETENTION,
    # The admin's counts and filters (its querysets come from core/admin_base.py)
    ("agents/admin.py", "<module>"): ADMIN,
    ("agents/admin.py", "VoiceAdmin.get_queryset"): ADMIN,
    ("agents/admin.py", "AgentAdmin.get_queryset"): ADMIN,
    ("calls/admin.py", "CallAdmin.get_queryset"): ADMIN,
    ("tenants/admin.py", "TenantAdmin.get_queryset"): ADMIN,
    ("integrations/admin.py", "ServiceFilter.lookups"): ADMIN,
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    function: str
    text: str

    def __str__(self):
        return f"{self.path}:{self.line} in {self.function}: {self.text}"


def tenant_owned_model_names() -> set[str]:
    return {m.__name__ for m in apps.get_models() if issubclass(m, TenantOwnedModel)}


def app_files():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if not SKIP.intersection(path.relative_to(ROOT).parts):
                yield path


class _Walker(ast.NodeVisitor):
    """Visits every node knowing its parent and the function (Class.method) it sits in."""

    def __init__(self, path: str, source: str, models: set[str]):
        self.path, self.source, self.models = path, source, models
        self.scope: list[str] = []
        self.parents: dict[ast.AST, ast.AST] = {}
        self.queries: list[Finding] = []  # bare queries of tenant-owned models
        self.bypasses: list[Finding] = []  # dangerously_* calls, listed or not

    def walk(self, tree):
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.visit(tree)

    def _scoped_visit(self, node, name):
        self.scope.append(name)
        self.generic_visit(node)
        self.scope.pop()

    def visit_ClassDef(self, node):
        self._scoped_visit(node, node.name)

    def visit_FunctionDef(self, node):
        self._scoped_visit(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def function(self) -> str:
        return ".".join(self.scope) or "<module>"

    def finding(self, node) -> Finding:
        text = ast.get_source_segment(self.source, node) or ""
        return Finding(self.path, node.lineno, self.function(), " ".join(text.split())[:160])

    def visit_Call(self, node):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in BYPASSES:
            self.bypasses.append(self.finding(node))
        self.generic_visit(node)

    def visit_Attribute(self, node):
        if node.attr in MANAGERS and isinstance(node.value, ast.Name) and node.value.id in self.models:
            top, calls = self._chain(node)
            if not self._accounted_for(top, calls):
                self.queries.append(self.finding(top))
        self.generic_visit(node)

    def _chain(self, node):
        """The whole `Model.objects.a(...).b(...)` expression and its method calls, in order."""
        calls = []
        while True:
            parent = self.parents.get(node)
            if isinstance(parent, ast.Attribute) and parent.value is node:
                node = parent
            elif isinstance(parent, ast.Call) and parent.func is node and isinstance(node, ast.Attribute):
                calls.append((node.attr, parent))
                node = parent
            else:
                return node, calls

    def _accounted_for(self, top, calls) -> bool:
        names = [name for name, _ in calls]
        if not names:
            return False  # a bare manager handed around: nothing says which tenant
        if names[0] in WRITES or "for_tenant" in names or BYPASSES.intersection(names):
            return True  # bypasses are checked against the allow-list separately
        if any(name in FILTERS and _call_pins_tenant(call) for name, call in calls):
            return True
        parent = self.parents.get(top)
        return isinstance(parent, ast.keyword) and parent.arg == "queryset" and _is_prefetch(self.parents[parent])


def _is_prefetch(call) -> bool:
    func = call.func
    return isinstance(call, ast.Call) and (getattr(func, "id", None) or getattr(func, "attr", None)) == "Prefetch"


def _call_pins_tenant(call: ast.Call) -> bool:
    """filter(tenant=...), get(tenant_id=...), filter(Q(tenant=...)): a keyword that pins the tenant."""
    for keyword in call.keywords:
        if keyword.arg and keyword.arg != "defaults" and lookup_pins_tenant(keyword.arg, _value(keyword.value)):
            return True
    return any(isinstance(arg, ast.Call) and _is_q(arg) and _call_pins_tenant(arg) for arg in call.args)


def _is_q(call: ast.Call) -> bool:
    return getattr(call.func, "id", None) == "Q"


def _value(node):
    """None for a literal None (which pins nothing), anything else for an expression."""
    return None if isinstance(node, ast.Constant) and node.value is None else node


@pytest.fixture(scope="module")
def walked():
    models = tenant_owned_model_names()
    queries, bypasses = [], []
    for path in app_files():
        source = path.read_text()
        walker = _Walker(str(path.relative_to(ROOT)), source, models)
        walker.walk(ast.parse(source, filename=str(path)))
        queries += walker.queries
        bypasses += walker.bypasses
    return queries, bypasses


def test_every_query_of_a_tenant_owned_model_names_its_tenant(walked):
    queries, _ = walked
    assert not queries, "Scope these with .for_tenant(tenant) or .filter(tenant=...):\n" + "\n".join(map(str, queries))


def test_every_bypass_is_on_the_allow_list(walked):
    _, bypasses = walked
    unlisted = [b for b in bypasses if (b.path, b.function) not in ALLOWED_BYPASSES]
    assert not unlisted, (
        "A deliberate cross-tenant read must be listed in ALLOWED_BYPASSES with its reason:\n"
        + "\n".join(map(str, unlisted))
    )


def test_the_allow_list_has_no_stale_entries(walked):
    _, bypasses = walked
    used = {(b.path, b.function) for b in bypasses}
    stale = sorted(set(ALLOWED_BYPASSES) - used)
    assert not stale, f"These allowed bypasses no longer exist: remove them from ALLOWED_BYPASSES: {stale}"


def test_every_allowed_bypass_says_why():
    assert all(reason.strip() for reason in ALLOWED_BYPASSES.values())


def test_the_walk_finds_a_bare_query_and_every_bypass():
    source = """
def leaky(pk):
    return Call.objects.filter(pk=pk, tenant=None).first()

def scoped(tenant, pk):
    a = Call.objects.for_tenant(tenant).get(pk=pk)
    b = Call.objects.select_related("agent").filter(Q(tenant=tenant), pk=pk)
    c = Call.objects.create(tenant=tenant)
    d = Prefetch("calls", queryset=Call.objects.order_by("pk"))
    e = Agent.objects.all()  # not a tenant-owned model in this walk

class Sweep:
    def run(self):
        return Call.objects.dangerously_unscoped().filter(status="ended")
"""
    walker = _Walker("example.py", source, {"Call"})
    walker.walk(ast.parse(source))

    assert [(f.function, f.line) for f in walker.queries] == [("leaky", 3)]
    assert [(f.function, f.line) for f in walker.bypasses] == [("Sweep.run", 14)]
