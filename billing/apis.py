"""/v1/usage."""

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from billing import selectors
from billing.models import UsageRecord
from voiceapp.api.docs import error_responses
from voiceapp.api.views import TenantScopedAPIView

MAX_DAYS = 366


class UsageQuery(serializers.Serializer):
    start = serializers.DateField(
        required=False, help_text="First day (UTC), YYYY-MM-DD. Default: the 1st of this month."
    )
    end = serializers.DateField(required=False, help_text="Last day (UTC), inclusive. Default: today.")
    group_by = serializers.ChoiceField(choices=["day", "agent"], default="day")

    def validate(self, attrs):
        today = timezone.now().date()
        attrs.setdefault("end", today)
        attrs.setdefault("start", attrs["end"].replace(day=1))
        if attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"start": ["start must not be after end."]})
        if attrs["end"] - attrs["start"] > timedelta(days=MAX_DAYS):
            raise serializers.ValidationError({"end": [f"The period may span at most {MAX_DAYS} days."]})
        return attrs


class UsageFigures(serializers.Serializer):
    calls = serializers.IntegerField()
    minutes = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Talk time.")
    billable_minutes = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="After the plan's rounding.")
    cost = serializers.DecimalField(max_digits=14, decimal_places=4, help_text="At the plan's price per minute.")


class UsageRow(UsageFigures):
    date = serializers.DateField(required=False, help_text="With group_by=day.")
    agent_id = serializers.UUIDField(required=False, allow_null=True, help_text="With group_by=agent.")

    def to_representation(self, instance):
        data = super().to_representation(instance)
        return {k: v for k, v in data.items() if k in instance}  # only the key the rows are grouped by


class UsageOutput(serializers.Serializer):
    start = serializers.DateField()
    end = serializers.DateField()
    group_by = serializers.CharField()
    totals = UsageFigures()
    results = UsageRow(many=True)


class UsageApi(TenantScopedAPIView):
    """Metered usage: a call is metered when it ends (and the hourly aggregation catches any missed)."""

    def tenant_queryset(self):
        return UsageRecord.objects.for_tenant(self.tenant)

    @extend_schema(
        operation_id="usage_retrieve",
        parameters=[UsageQuery],
        responses={200: UsageOutput, **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        query = UsageQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        start, end, group_by = (query.validated_data[k] for k in ("start", "end", "group_by"))
        summary = selectors.usage_summary(tenant=self.tenant, start=start, end=end, group_by=group_by)
        label = "date" if group_by == "day" else "agent_id"
        results = [{label: row.pop("group"), **row} for row in summary["rows"]]
        body = {"start": start, "end": end, "group_by": group_by, "totals": summary["totals"], "results": results}
        return Response(UsageOutput(body).data)
