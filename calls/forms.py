"""Filters of the dashboard's calls list: the API's CallFilter with fields a person fills in."""

import re
from typing import cast

import django_filters
from django import forms
from django.db.models import Exists, OuterRef, Q, Subquery

from agents.models import Agent
from agents.selectors import agent_list
from calls import carriers
from calls.filters import CallFilter
from calls.models import Call, TranscriptTurn
from calls.state_machine import CallStatus
from core.validators import validate_e164
from core.web.forms import ServiceErrorsMixin

NUMBER_NOISE = re.compile(r"[\s().-]")


class CallFilterForm(forms.Form):
    def clean(self):
        cleaned = super().clean()
        assert cleaned is not None  # forms.Form.clean returns cleaned_data
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date must be on or after the start date.")
        return cleaned


def phone_digits(value: str) -> None:
    if not re.fullmatch(r"\+?\d*", NUMBER_NOISE.sub("", value)):
        raise forms.ValidationError("Enter digits of a phone number, such as +1555 or 0100.")


def tenant_agents(request):
    """Every agent of the tenant, deleted ones too: their calls are still listed."""
    return Agent.objects.for_tenant(request.tenant).order_by("name", "id")


class CallListFilter(CallFilter):
    """/calls/ filters: one status, agent by name, day range, part of a number, end reason.

    The API's `agent_id`, `started_after`/`started_before` (timestamps) and `ordering` give way to
    fields a form can offer; the list is always newest first.
    """

    refuse_blank = False  # a person's form sends its empty fields

    # The API's fields, not offered here. django-filter (untyped) pops filters off the class and reads None
    # as "drop the parent's filter", which mypy can only see as overriding a filter attribute with None.
    agent_id = started_after = started_before = ordering = None  # type: ignore[assignment]

    q = django_filters.CharFilter(
        method="filter_transcript",
        label="Words said",
        max_length=200,
        help_text="Calls whose conversation contains every one of these words.",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "appointment Monday…"}),
    )

    status = django_filters.ChoiceFilter(choices=CallStatus.choices, empty_label="Any status", label="Status")
    direction = django_filters.ChoiceFilter(
        choices=Call.Direction.choices, empty_label="Both directions", label="Direction"
    )
    agent = django_filters.ModelChoiceFilter(
        queryset=tenant_agents, empty_label="All agents", label="Agent", help_text="The agent that handled the call."
    )
    date_from = django_filters.DateFilter(
        field_name="started_at",
        lookup_expr="date__gte",
        label="From",
        help_text="First day (UTC), inclusive.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    date_to = django_filters.DateFilter(
        field_name="started_at",
        lookup_expr="date__lte",
        label="To",
        help_text="Last day (UTC), inclusive.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    number = django_filters.CharFilter(
        method="filter_number",
        label="Phone number",
        max_length=50,
        validators=[phone_digits],
        help_text="All or part of the caller's or the called number.",
        widget=forms.TextInput(attrs={"type": "search", "inputmode": "tel", "placeholder": "+1555…"}),
    )
    end_reason = django_filters.ChoiceFilter(
        choices=Call.EndReason.choices, empty_label="Any end reason", label="End reason"
    )

    class Meta(CallFilter.Meta):
        form = CallFilterForm

    def filter_transcript(self, queryset, name, value):
        """Every word in some turn of the call (case-insensitive); the first word's turn is kept to show."""
        words = value.split()[:10]
        if not words:
            return queryset
        for word in words:
            said = TranscriptTurn.objects.filter(call=OuterRef("pk"), tenant=OuterRef("tenant"), text__icontains=word)
            queryset = queryset.filter(Exists(said))
        first = TranscriptTurn.objects.filter(
            call=OuterRef("pk"), tenant=OuterRef("tenant"), text__icontains=words[0]
        ).order_by("turn_number")
        return queryset.annotate(matched_text=Subquery(first.values("text")[:1]))

    def filter_number(self, queryset, name, value):
        digits = NUMBER_NOISE.sub("", value)
        if not digits:
            return queryset
        return queryset.filter(Q(from_number__contains=digits) | Q(to_number__contains=digits))


class OutboundCallForm(ServiceErrorsMixin, forms.Form):
    """Place a call: the fields of POST /v1/calls (agent, the number to call, the caller id)."""

    service_error_aliases = {"agent_id": "agent", "from_number_id": "from_number", "to": "to_number"}

    agent = forms.ModelChoiceField(queryset=Agent.objects.none(), help_text="The agent that talks to them.")
    to_number = forms.CharField(
        label="Number to call",
        max_length=30,
        help_text="E.164: + then country code and number, e.g. +15551234567 (spaces and dashes are fine).",
        widget=forms.TextInput(attrs={"type": "tel", "inputmode": "tel", "placeholder": "+15551234567"}),
    )
    from_number = forms.ModelChoiceField(
        queryset=carriers.number_model().objects.none(),
        required=False,
        empty_label="The agent's number",
        label="Call from",
        help_text="The caller id they see: one of your numbers.",
    )

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["agent"]).queryset = agent_list(tenant=tenant)
        cast(forms.ModelChoiceField, self.fields["from_number"]).queryset = carriers.active_numbers(tenant=tenant)

    def clean_to_number(self) -> str:
        number = NUMBER_NOISE.sub("", self.cleaned_data["to_number"])
        validate_e164(number)
        return number
