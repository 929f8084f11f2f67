"""Query filters for /v1/calls (django-filter)."""

from datetime import UTC

import django_filters
from django.db.models import Q
from rest_framework.exceptions import ValidationError

from calls.models import Call
from calls.state_machine import CallStatus
from core.api.filters import StrictFilterSet


class UTCDateTimeFilter(django_filters.IsoDateTimeFilter):
    """ISO-8601 with any offset, compared in UTC (PostgreSQL refuses offsets beyond ±15:59)."""

    def filter(self, qs, value):
        if value is None:
            return super().filter(qs, value)
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00+01:00 is before the first UTC instant Python can hold
            raise ValidationError({self.field_name: ["This time is outside the range of dates we keep."]}) from None
        return super().filter(qs, value)


class CallFilter(StrictFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=CallStatus.choices, help_text="One or more statuses.")
    direction = django_filters.ChoiceFilter(choices=Call.Direction.choices)
    agent_id = django_filters.UUIDFilter(field_name="agent_id", help_text="Calls handled by this agent.")
    number = django_filters.CharFilter(method="filter_number", help_text="E.164 number as caller or callee.")
    started_after = UTCDateTimeFilter(field_name="started_at", lookup_expr="gte", help_text="ISO-8601, inclusive.")
    started_before = UTCDateTimeFilter(field_name="started_at", lookup_expr="lt", help_text="ISO-8601, exclusive.")
    ordering = django_filters.OrderingFilter(
        fields=(("created_at", "created_at"), ("started_at", "started_at"), ("duration_seconds", "duration_seconds"))
    )

    class Meta:
        model = Call
        fields: list[str] = []

    def filter_number(self, queryset, name, value):
        return queryset.filter(Q(from_number=value) | Q(to_number=value))
