"""/v1/usage and the daily usage reports."""

from datetime import timedelta

from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from billing import selectors
from billing.models import UsageRecord, UsageReport
from core.api.docs import error_responses
from core.api.serializers import Query
from tenants.api.views import TenantScopedAPIView

MAX_DAYS = 366


class UsageQuery(Query):
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


class UsageReportOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField(help_text="GET it with your API key: the CSV itself.")

    class Meta:
        model = UsageReport
        fields = ["id", "day", "rows", "download_url", "created_at", "updated_at"]

    def get_download_url(self, obj) -> str:
        return self.context["request"].build_absolute_uri(f"/v1/usage/reports/{obj.pk}")


class UsageReportListApi(TenantScopedAPIView):
    """The daily usage CSVs (generate_daily_report, 00:00 UTC): one per UTC day, newest first."""

    serializer_class = UsageReportOutput

    def tenant_queryset(self):
        return selectors.usage_report_list(tenant=self.tenant)

    @extend_schema(
        operation_id="usage_reports_list",
        responses={200: UsageReportOutput(many=True), **error_responses(401, 403, 429)},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(UsageReportOutput(page, many=True, context={"request": request}).data)


class UsageReportDownloadApi(TenantScopedAPIView):
    serializer_class = UsageReportOutput

    def tenant_queryset(self):
        return selectors.usage_report_list(tenant=self.tenant)

    @extend_schema(
        operation_id="usage_reports_download",
        responses={
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR,
                description="date, agent_id, agent_name, calls, seconds, billable_seconds, amount: one row per agent.",
            ),
            **error_responses(401, 403, 404, 429),
        },
    )
    def get(self, request, report_id):
        report = self.get_scoped(report_id)
        name = f"usage-{report.day:%Y-%m-%d}.csv"
        return FileResponse(report.file.open("rb"), as_attachment=True, filename=name, content_type="text/csv")
