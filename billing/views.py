"""The usage and billing page: minutes and calls over a period, the plan, invoices, the concurrent-call limit."""

from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.views import View
from django.views.generic import TemplateView

from agents.models import Agent
from billing import selectors
from billing.forms import UsagePeriodForm
from calls import concurrency
from core.web.csv_export import csv_response
from tenants.web import TenantPageMixin

INVOICES_SHOWN = 24
REPORTS_SHOWN = 31


class UsageView(TenantPageMixin, TemplateView):
    template_name = "billing/usage.html"
    page_title = "Usage & billing"
    nav_section = "usage"

    def get(self, request, *args, **kwargs):
        form = UsagePeriodForm(request.GET or None)
        invalid = form.is_bound and not form.is_valid()
        context = self.get_context_data(form=form, **kwargs)
        return self.render_to_response(context, status=400 if invalid else 200)

    def get_context_data(self, *, form: UsagePeriodForm, **kwargs):
        context = super().get_context_data(**kwargs)
        start, end, period = form.days()
        export_query = "" if form.errors else self.request.GET.urlencode()  # the CSV of the period shown
        if not form.errors:  # show the dates a named period stands for
            form = UsagePeriodForm(initial={"period": period, "start": start, "end": end})
        by_day = selectors.usage_summary(tenant=self.tenant, start=start, end=end, group_by="day")
        by_agent = selectors.usage_summary(tenant=self.tenant, start=start, end=end, group_by="agent")
        context.update(
            form=form,
            start=start,
            end=end,
            totals=by_day["totals"],
            chart_data=chart_data(self.tenant, start, end, by_day["rows"], by_agent["rows"]),
            plan_usage=selectors.usage_against_plan(tenant=self.tenant, start=start, end=end),
            invoices=invoice_rows(selectors.invoice_list(tenant=self.tenant)[:INVOICES_SHOWN]),
            concurrency=concurrency_figures(self.tenant),
            reports=selectors.usage_report_list(tenant=self.tenant)[:REPORTS_SHOWN],
            export_query=export_query,
        )
        return context


class UsageReportDownloadView(TenantPageMixin, View):
    """One daily usage CSV (generate_daily_report) from the default storage; another tenant's is a 404."""

    def get(self, request, report_id):
        report = get_object_or_404(selectors.usage_report_list(tenant=self.tenant), pk=report_id)
        try:
            csv_file = report.file.open("rb")
        except (FileNotFoundError, ValueError) as exc:  # removed by retention, or never written
            raise Http404("The report file is gone.") from exc
        name = f"usage-{report.day:%Y-%m-%d}.csv"
        return FileResponse(csv_file, as_attachment=True, filename=name, content_type="text/csv")


USAGE_CSV_HEADER = ["day", "agent_id", "agent_name", "calls", "minutes", "billable_minutes", "cost"]


class UsageExportView(TenantPageMixin, View):
    """GET /usage/export.csv?<the page's period>: the period's usage per day and agent, as the page shows it."""

    def get(self, request):
        form = UsagePeriodForm(request.GET or None)
        if form.is_bound and not form.is_valid():
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
            return HttpResponse(f"The period is not valid: {problems}", status=400, content_type="text/plain")
        start, end, _period = form.days()
        return csv_response(
            f"usage-{start:%Y-%m-%d}-to-{end:%Y-%m-%d}.csv", USAGE_CSV_HEADER, usage_rows(self.tenant, start, end)
        )


def usage_rows(tenant, start: date, end: date):
    """One row per UTC day and agent with usage, in day then agent-name order."""
    rows = (
        selectors.usage_records_between(tenant=tenant, start=start, end=end)
        .annotate(day=TruncDate("period_end"))
        .values("day", "agent_id")
        .annotate(calls=Count("id"), seconds=Sum("quantity"), billable=Sum("billable_quantity"), cost=Sum("amount"))
        .order_by("day", "agent_id")
    )
    rows = list(rows)
    names = dict(
        Agent.objects.for_tenant(tenant).filter(pk__in={r["agent_id"] for r in rows}).values_list("pk", "name")
    )
    for row in sorted(rows, key=lambda r: (r["day"], _agent_name(names, r["agent_id"]))):
        yield [
            row["day"].isoformat(),
            row["agent_id"] or "",
            _agent_name(names, row["agent_id"]),
            row["calls"],
            _minutes(row["seconds"]),
            _minutes(row["billable"]),
            Decimal(row["cost"] or 0).quantize(Decimal("0.0001")),
        ]


def _minutes(seconds) -> Decimal:
    """Minutes to the cent, as the page shows them (billing.selectors.usage_summary)."""
    return (Decimal(seconds or 0) / 60).quantize(Decimal("0.01"))


def chart_data(tenant, start: date, end: date, day_rows: list[dict], agent_rows: list[dict]) -> dict:
    """What usage.js draws: every day of the period (zeros included) and every agent with usage."""
    per_day = {row["group"]: row for row in day_rows}
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    names = dict(
        Agent.objects.for_tenant(tenant).filter(pk__in=[r["group"] for r in agent_rows]).values_list("pk", "name")
    )
    agents = sorted(agent_rows, key=lambda r: (-r["minutes"], _agent_name(names, r["group"])))
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "days": [day.isoformat() for day in days],
        "minutes_per_day": [float(per_day[day]["minutes"]) if day in per_day else 0.0 for day in days],
        "calls_per_day": [per_day[day]["calls"] if day in per_day else 0 for day in days],
        "agents": [_agent_name(names, row["group"]) for row in agents],
        "minutes_per_agent": [float(row["minutes"]) for row in agents],
        "calls_per_agent": [row["calls"] for row in agents],
    }


def _agent_name(names: dict, agent_id) -> str:
    if agent_id is None:
        return "Deleted agent"
    return names.get(agent_id, "Deleted agent")


def invoice_rows(invoices) -> list[dict]:
    """Invoices with the last day they cover (their period ends at midnight after it)."""
    return [
        {"invoice": invoice, "last_day": (invoice.period_end - timedelta(microseconds=1)).date()}
        for invoice in invoices
    ]


def concurrency_figures(tenant) -> dict:
    limit = selectors.max_concurrent_calls(tenant=tenant)
    active = concurrency.active_calls_count(tenant_id=tenant.pk)
    return {"limit": limit, "active": active, "percent": min(round(active * 100 / limit), 100) if limit else 0}
