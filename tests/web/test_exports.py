"""Item 14: the calls as CSV (streamed, the list's filters), the daily usage reports and the period's usage CSV."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from billing.models import UsageReport
from billing.services import daily_report_for_tenant
from calls.models import Call
from calls.services import call_initiate
from calls.state_machine import CallStatus
from tests import factories

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- calls -------------------------------------------------------------------------------------------


def test_calls_export_is_a_streamed_csv_honouring_the_filters(web_client, tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    answered = factories.CallFactory(
        tenant=tenant,
        agent=agent,
        status=CallStatus.ENDED,
        started_at=T0,
        answered_at=T0,
        ended_at=T0 + timedelta(seconds=82),
        duration_seconds=82,
        end_reason=Call.EndReason.CALLER_HANGUP,
        from_number="+15551230001",
        to_number="+15550000100",
    )
    failed = factories.CallFactory(tenant=tenant, agent=agent, direction="outbound", to_number="+15559870002")
    call_initiate(call=failed)
    factories.CallFactory(tenant=other_tenant, from_number="+15557770000")

    response = web_client.get("/calls/export.csv?direction=inbound")
    everything = web_client.get("/calls/export.csv")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="calls-')
    header, *rows = csv_rows(response)
    assert header[:8] == [
        "call_id",
        "created_at",
        "started_at",
        "answered_at",
        "ended_at",
        "direction",
        "status",
        "outcome",
    ]
    assert rows == [
        [str(answered.pk), answered.created_at.isoformat(), T0.isoformat(), T0.isoformat(),
         (T0 + timedelta(seconds=82)).isoformat(), "inbound", "ended", "Ended", "", "Front desk",
         "+15551230001", "+15550000100", "82", "caller_hangup"],
    ]  # fmt: skip
    _, *all_rows = csv_rows(everything)
    assert {row[0] for row in all_rows} == {str(answered.pk), str(failed.pk)}  # never the other tenant's
    failed_row = next(row for row in all_rows if row[0] == str(failed.pk))
    assert failed_row[7:9] == [
        "Failed",
        "No phone carrier is configured on this deployment, so the call was not placed",
    ]


def test_calls_export_searches_what_was_said_too(web_client, tenant):
    said = factories.CallFactory(tenant=tenant)
    factories.TranscriptTurnFactory(call=said, turn_number=1, text="Please cancel my order.")
    factories.CallFactory(tenant=tenant)

    _, *rows = csv_rows(web_client.get("/calls/export.csv?q=cancel"))

    assert [row[0] for row in rows] == [str(said.pk)]


def test_a_formula_in_a_name_is_not_run_by_a_spreadsheet(web_client, tenant):
    agent = factories.AgentFactory(tenant=tenant, name='=HYPERLINK("http://evil.test","x")')
    factories.CallFactory(tenant=tenant, agent=agent)

    _, row = csv_rows(web_client.get("/calls/export.csv"))

    assert row[9] == '\'=HYPERLINK("http://evil.test","x")'
    assert row[10] == "+15550000001"  # a phone number stays as it is


def test_invalid_export_filters_are_a_400(web_client):
    response = web_client.get("/calls/export.csv?status=bogus")

    assert response.status_code == 400
    assert b"status" in response.content


def test_the_calls_list_links_to_the_export_with_its_filters(web_client, tenant):
    html = web_client.get("/calls/?direction=inbound&q=refund").content.decode()

    assert 'href="/calls/export.csv?direction=inbound&amp;q=refund"' in html


# --- usage ---------------------------------------------------------------------------------------------


def test_daily_reports_are_listed_and_downloaded_for_the_tenant_only(web_client, tenant, other_tenant):
    agent = factories.AgentFactory(tenant=tenant, name="Front desk")
    day = datetime(2026, 3, 9, tzinfo=UTC)
    factories.UsageRecordFactory(
        tenant=tenant, agent=agent, period_start=day + timedelta(hours=9), period_end=day + timedelta(hours=9, minutes=2),
        quantity=120, billable_quantity=120,
    )  # fmt: skip
    daily_report_for_tenant(tenant=tenant, day_start=day)
    theirs = factories.UsageReportFactory(tenant=other_tenant)
    report = UsageReport.objects.for_tenant(tenant).get()

    page = web_client.get("/usage/").content.decode()
    download = web_client.get(f"/usage/reports/{report.pk}.csv")

    assert f'href="/usage/reports/{report.pk}.csv"' in page and "usage-2026-03-09.csv" in page
    assert f"/usage/reports/{theirs.pk}.csv" not in page
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="usage-2026-03-09.csv"'
    lines = b"".join(download.streaming_content).decode().splitlines()
    assert lines[1].startswith(f"2026-03-09,{agent.pk},Front desk,1,120,120,")
    assert web_client.get(f"/usage/reports/{theirs.pk}.csv").status_code == 404


def test_the_usage_periods_csv_has_a_row_per_day_and_agent(web_client, tenant, other_tenant):
    front = factories.AgentFactory(tenant=tenant, name="Front desk")
    after = factories.AgentFactory(tenant=tenant, name="After hours")
    for agent, day, seconds in ((front, 9, 90), (front, 9, 30), (after, 9, 60), (front, 10, 150), (front, 20, 60)):
        ended = datetime(2026, 3, day, 15, tzinfo=UTC)
        factories.UsageRecordFactory(
            tenant=tenant, agent=agent, period_start=ended - timedelta(seconds=seconds), period_end=ended,
            quantity=seconds, billable_quantity=seconds,
        )  # fmt: skip
    theirs = datetime(2026, 3, 9, 15, tzinfo=UTC)
    factories.UsageRecordFactory(tenant=other_tenant, period_start=theirs - timedelta(seconds=60), period_end=theirs)

    response = web_client.get("/usage/export.csv?period=custom&start=2026-03-09&end=2026-03-10")

    assert response["Content-Disposition"] == 'attachment; filename="usage-2026-03-09-to-2026-03-10.csv"'
    header, *rows = csv_rows(response)
    assert header == ["day", "agent_id", "agent_name", "calls", "minutes", "billable_minutes", "cost"]
    assert [row[:6] for row in rows] == [
        ["2026-03-09", str(after.pk), "After hours", "1", "1.00", "1.00"],
        ["2026-03-09", str(front.pk), "Front desk", "2", "2.00", "2.00"],
        ["2026-03-10", str(front.pk), "Front desk", "1", "2.50", "2.50"],
    ]


def test_the_usage_page_links_to_its_periods_csv(web_client):
    html = web_client.get("/usage/?period=custom&start=2026-03-09&end=2026-03-10").content.decode()

    assert 'href="/usage/export.csv?period=custom&amp;start=2026-03-09&amp;end=2026-03-10"' in html


def test_an_invalid_period_is_a_400(web_client):
    assert web_client.get("/usage/export.csv?start=2026-03-10&end=2026-03-01&period=custom").status_code == 400


def test_exports_need_a_signed_in_member(client, tenant):
    assert client.get("/calls/export.csv").status_code == 302
    assert client.get("/usage/export.csv").status_code == 302


def test_a_report_whose_file_is_gone_is_404(web_client, tenant):
    report = factories.UsageReportFactory(tenant=tenant)
    report.file.delete(save=False)

    assert web_client.get(f"/usage/reports/{report.pk}.csv").status_code == 404
