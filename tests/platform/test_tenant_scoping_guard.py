"""The runtime guard: a tenant-owned queryset refuses to be read until it is scoped to a tenant."""

import pytest
from django.apps import apps
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Subquery

from agents.models import Agent
from calls.models import Call, TranscriptTurn
from tenants.models import ApiKey, Membership, Tenant, TenantOwnedModel
from tenants.scoping import TenantOwnedQuerySet, UnscopedQuery, lookup_pins_tenant, q_pins_tenant
from tests import factories

pytestmark = pytest.mark.django_db

TENANT_OWNED = sorted(
    (m for m in apps.get_models() if issubclass(m, TenantOwnedModel)), key=lambda model: model._meta.label
)

READS = {
    "list": list,
    "len": len,
    "bool": bool,
    "for loop": lambda qs: next(iter(qs)),
    "indexing": lambda qs: qs[0],
    "count": lambda qs: qs.count(),
    "exists": lambda qs: qs.exists(),
    "get": lambda qs: qs.get(),
    "first": lambda qs: qs.first(),
    "last": lambda qs: qs.last(),
    "aggregate": lambda qs: qs.aggregate(n=Count("pk")),
    "update": lambda qs: qs.update(status=Call.Status.ENDED),
    "delete": lambda qs: qs.delete(),
    "values": lambda qs: list(qs.values("pk")),
    "values_list": lambda qs: list(qs.values_list("pk", flat=True)),
    "in_bulk": lambda qs: qs.in_bulk(),
    "iterator": lambda qs: list(qs.iterator()),
    "get_or_create": lambda qs: qs.get_or_create(external_call_id="x"),
}


@pytest.fixture
def calls(tenant, other_tenant):
    ours = factories.CallFactory(tenant=tenant, agent=factories.AgentFactory(tenant=tenant))
    theirs = factories.CallFactory(tenant=other_tenant, agent=factories.AgentFactory(tenant=other_tenant))
    return ours, theirs


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_reading_an_unscoped_queryset_raises_unscoped_query(calls, read):
    with pytest.raises(UnscopedQuery, match=r"calls\.Call.*for_tenant"):
        read(Call.objects.filter(status=Call.Status.RINGING).order_by("pk"))


@pytest.mark.parametrize("model", TENANT_OWNED, ids=lambda model: model._meta.label)
def test_every_tenant_owned_model_refuses_an_unscoped_read(model):
    assert isinstance(model._default_manager.all(), TenantOwnedQuerySet)
    with pytest.raises(UnscopedQuery):
        model.objects.exists()


def test_a_refused_read_sends_no_query(calls, django_assert_num_queries):
    with django_assert_num_queries(0), pytest.raises(UnscopedQuery):
        list(Call.objects.all())


SCOPED = {
    "for_tenant": lambda tenant: Call.objects.for_tenant(tenant),
    "filter(tenant=)": lambda tenant: Call.objects.filter(tenant=tenant),
    "filter(tenant_id=)": lambda tenant: Call.objects.filter(tenant_id=tenant.pk),
    "filter(tenant__pk=)": lambda tenant: Call.objects.filter(tenant__pk=tenant.pk),
    "filter(tenant__slug=)": lambda tenant: Call.objects.filter(tenant__slug=tenant.slug),
    "filter(tenant__in=)": lambda tenant: Call.objects.filter(tenant__in=[tenant]),
    "filter(Q(tenant=))": lambda tenant: Call.objects.filter(Q(tenant=tenant) & Q(status=Call.Status.INITIAL)),
    "filter(Q | Q), both pinned": lambda tenant: Call.objects.filter(Q(tenant=tenant) | Q(tenant_id=tenant.pk)),
    "complex_filter(Q(tenant=))": lambda tenant: Call.objects.complex_filter(Q(tenant=tenant)),
    "scoped, then narrowed": lambda tenant: Call.objects.for_tenant(tenant).exclude(status="x").order_by("pk"),
    "narrowed, then scoped": lambda tenant: Call.objects.select_related("agent").order_by("pk").for_tenant(tenant),
    "values()": lambda tenant: Call.objects.for_tenant(tenant).values("tenant"),
    "scoped | scoped": lambda tenant: Call.objects.for_tenant(tenant) | Call.objects.filter(tenant=tenant),
    "scoped & unscoped": lambda tenant: Call.objects.for_tenant(tenant) & Call.objects.all(),
}


@pytest.mark.parametrize("scoped", SCOPED.values(), ids=SCOPED.keys())
def test_each_scoped_form_may_be_read(calls, tenant, scoped):
    rows = list(scoped(tenant))

    assert [row["tenant"] if isinstance(row, dict) else row.tenant_id for row in rows] == [tenant.pk]
    assert scoped(tenant).count() == 1


def test_dangerously_unscoped_reads_every_tenant(calls):
    assert sorted(c.pk for c in Call.objects.dangerously_unscoped()) == sorted(c.pk for c in calls)
    assert Call.objects.filter(status=Call.Status.INITIAL).dangerously_unscoped().count() == 2


def test_a_scoped_read_returns_only_that_tenants_rows(calls, tenant):
    ours, _theirs = calls

    assert list(Call.objects.for_tenant(tenant)) == [ours]
    assert list(Call.objects.filter(tenant_id=tenant.pk).values_list("pk", flat=True)) == [ours.pk]


NOT_SCOPING = {
    "exclude(tenant=)": lambda tenant: Call.objects.exclude(tenant=tenant),
    "filter(~Q(tenant=))": lambda tenant: Call.objects.filter(~Q(tenant=tenant)),
    "filter(Q(tenant=) | Q(status=))": lambda tenant: Call.objects.filter(Q(tenant=tenant) | Q(status="ended")),
    "filter(tenant__isnull=False)": lambda tenant: Call.objects.filter(tenant__isnull=False),
    "filter(tenant__status=)": lambda tenant: Call.objects.filter(tenant__status=Tenant.Status.ACTIVE),
    "filter(tenant=None)": lambda tenant: Call.objects.filter(tenant=None),
    "scoped | unscoped": lambda tenant: Call.objects.for_tenant(tenant) | Call.objects.all(),
    "scoped.union(unscoped)": lambda tenant: Call.objects.for_tenant(tenant).union(Call.objects.all()),
    "another row's relation": lambda tenant: Call.objects.filter(agent__tenant=tenant),
}


@pytest.mark.parametrize("unscoped", NOT_SCOPING.values(), ids=NOT_SCOPING.keys())
def test_filters_that_do_not_pin_one_tenant_do_not_scope(calls, tenant, unscoped):
    with pytest.raises(UnscopedQuery):
        list(unscoped(tenant))


def test_for_tenant_refuses_a_missing_tenant():
    with pytest.raises(ValueError, match="dangerously_unscoped"):
        Call.objects.for_tenant(None)


def test_related_managers_of_a_row_already_read_are_scoped(calls, tenant):
    ours, _ = calls
    factories.TranscriptTurnFactory(call=ours, tenant=tenant)
    call = Call.objects.for_tenant(tenant).get(pk=ours.pk)

    assert call.turns.count() == 1
    assert len(call.turns.all()) == 1
    assert call.turns.filter(speaker=call.turns.get().speaker).exists()
    assert list(call.agent.calls.all()) == [call]


def test_prefetch_related_is_scoped_by_its_parent_rows(calls, tenant, other_tenant, django_assert_num_queries):
    ours, theirs = calls
    factories.TranscriptTurnFactory(call=ours, tenant=tenant)
    factories.TranscriptTurnFactory(call=theirs, tenant=other_tenant)

    with django_assert_num_queries(4):  # each time: the calls, then their turns
        plain = list(Call.objects.for_tenant(tenant).prefetch_related("turns"))
        given = Prefetch("turns", queryset=TranscriptTurn.objects.order_by("turn_number"))
        explicit = list(Call.objects.for_tenant(tenant).prefetch_related(given))

    assert [len(c.turns.all()) for c in plain + explicit] == [1, 1]


def test_subqueries_are_not_read_on_their_own(calls, tenant):
    ours, _ = calls
    factories.TranscriptTurnFactory(call=ours, tenant=tenant, text="hello")
    said = TranscriptTurn.objects.filter(call=OuterRef("pk"), text="hello")
    agents_with_calls = Agent.objects.for_tenant(tenant).filter(pk__in=Call.objects.values("agent"))

    matched = Call.objects.for_tenant(tenant).filter(Exists(said)).annotate(text=Subquery(said.values("text")[:1]))

    assert [(c.pk, c.text) for c in matched] == [(ours.pk, "hello")]
    assert list(agents_with_calls) == [ours.agent]


def test_creating_and_saving_rows_is_not_a_read(tenant):
    agent = Agent.objects.create(tenant=tenant, name="Front desk", system_prompt="Be brief.")
    agent.name = "Reception"
    agent.save()
    agent.refresh_from_db()
    Membership.objects.bulk_create([Membership(tenant=tenant, user=factories.UserFactory())])

    assert Agent.objects.for_tenant(tenant).get().name == "Reception"
    assert Membership.objects.for_tenant(tenant).count() == 1


def test_deleting_a_row_cascades_to_its_children(calls, tenant, other_tenant):
    ours, theirs = calls
    factories.TranscriptTurnFactory(call=ours, tenant=tenant)
    factories.TranscriptTurnFactory(call=theirs, tenant=other_tenant)

    ours.delete()

    assert [turn.call_id for turn in TranscriptTurn.objects.dangerously_unscoped()] == [theirs.pk]


def test_model_validation_checks_uniqueness_across_tenants(tenant, other_tenant):
    taken = factories.ApiKeyFactory(tenant=tenant)
    clash = ApiKey(tenant=other_tenant, name="copy", prefix=taken.prefix, key_hash="a" * 64)

    with pytest.raises(Exception, match="prefix"):
        clash.full_clean()


def test_repr_of_an_unscoped_queryset_does_not_read_it(calls, django_assert_num_queries):
    with django_assert_num_queries(0):
        text = repr(Call.objects.all())

    assert "not scoped" in text


def test_none_is_readable_and_empty():
    assert list(Call.objects.none()) == []


def test_a_tenant_pinning_lookup_is_recognised():
    assert lookup_pins_tenant("tenant", object())
    assert lookup_pins_tenant("tenant_id__in", [1])
    assert not lookup_pins_tenant("tenant__deleted_at__isnull", True)
    assert not lookup_pins_tenant("tenant", None)
    assert q_pins_tenant(Q(status="x", tenant=1))
    assert not q_pins_tenant(Q(status="x") | Q(tenant=1))
