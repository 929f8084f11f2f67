"""The usage and billing page: minutes and calls over a period, the plan, invoices, the concurrent-call limit."""

from datetime import date, timedelta

from django.views.generic import TemplateView

from agents.models import Agent
from billing import selectors
from billing.forms import UsagePeriodForm
from calls import concurrency
from voiceapp.web.tenancy import TenantPageMixin

INVOICES_SHOWN = 24


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
        )
        return context


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
