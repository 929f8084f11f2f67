"""The usage page's period: a named period or two dates (UTC days, inclusive)."""

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from billing.apis import MAX_DAYS

PERIODS = (
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("last_30_days", "Last 30 days"),
    ("custom", "Dates below"),
)


def period_days(period: str, today: date) -> tuple[date, date]:
    """First and last day of a named period."""
    if period == "last_month":
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if period == "last_30_days":
        return today - timedelta(days=29), today
    return today.replace(day=1), today


class UsagePeriodForm(forms.Form):
    period = forms.ChoiceField(
        choices=PERIODS, required=False, initial="this_month", help_text="Days are UTC, like your invoices."
    )
    start = forms.DateField(
        required=False,
        label="From",
        help_text="First day, with “Dates below”.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        required=False,
        label="To",
        help_text="Last day, inclusive.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if self.errors:
            return cleaned
        if self.wants_dates(cleaned):
            self._check_dates(start, end)
        return cleaned

    @staticmethod
    def wants_dates(cleaned: dict) -> bool:
        """Dates count with "Dates below", or with no period named; a named period ignores them."""
        period = cleaned.get("period")
        return period == "custom" or (not period and bool(cleaned.get("start") or cleaned.get("end")))

    def _check_dates(self, start: date | None, end: date | None) -> None:
        if start is None:
            self.add_error("start", "Choose the first day.")
        if end is None:
            self.add_error("end", "Choose the last day.")
        if start and end and start > end:
            self.add_error("end", "The last day must be on or after the first day.")
        elif start and end and (end - start).days > MAX_DAYS:
            self.add_error("end", f"A period may span at most {MAX_DAYS} days.")

    def days(self) -> tuple[date, date, str]:
        """The chosen (first day, last day, period key); this month when nothing valid is chosen."""
        today = timezone.now().date()
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        if self.wants_dates(data):
            return data["start"], data["end"], "custom"
        period = data.get("period") or "this_month"
        return *period_days(period, today), period
