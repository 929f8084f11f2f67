"""Dashboard pages of past and present calls: the filterable list, one call's page, its recording."""

import json
import math
from typing import TypedDict

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from calls import latency, presentation, selectors, services
from calls.forms import CallListFilter, OutboundCallForm
from calls.models import Recording, TranscriptTurn
from calls.recordings import RecordingGone, recording_response
from core.errors import ApplicationError
from core.http_range import RangeNotSatisfiable, not_satisfiable_response
from core.web.csv_export import csv_response
from tenants.web import TenantPageMixin

# The per-turn latencies kept in TranscriptTurn.metadata (calls/latency.py): the caller's turn carries
# the STT delay, the agent's answer the LLM, TTS and end-to-end ones.
STT_KEY = latency.STT_MS
LATENCY_COLUMNS = latency.COLUMNS


def offset_text(seconds: float) -> str:
    """Seconds since the call started as +m:ss.s (negative offsets kept visible)."""
    sign = "-" if seconds < 0 else "+"
    minutes, rest = divmod(abs(seconds), 60)
    return f"{sign}{int(minutes)}:{rest:04.1f}"


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


class CallListView(TenantPageMixin, ListView):
    """Every call of the tenant, newest first, filtered by the query string."""

    template_name = "calls/list.html"
    page_title = "Calls"
    nav_section = "calls"
    paginate_by = 25
    context_object_name = "calls"

    def get_queryset(self):
        calls = selectors.call_list(tenant=self.tenant).select_related("agent")
        self.filterset = CallListFilter(self.request.GET or None, queryset=calls, request=self.request)
        if self.filterset.is_bound and not self.filterset.is_valid():
            return calls.none()
        return self.filterset.qs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["filter_form"] = self.filterset.form
        context["filtered"] = any(v for k, v in self.request.GET.items() if k != "page")
        return context

    def render_to_response(self, context, **response_kwargs):
        if self.filterset.is_bound and not self.filterset.is_valid():
            response_kwargs["status"] = 400
        return super().render_to_response(context, **response_kwargs)


class CallDetailView(TenantPageMixin, TemplateView):
    """One call: its conversation, tool calls, events, recording, analysis and latencies."""

    template_name = "calls/detail.html"
    nav_section = "calls"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        call = selectors.call_detail(tenant=self.tenant, call_id=kwargs["call_id"])
        if call is None:
            raise Http404("No such call.")
        start = call.started_at or call.created_at
        turns = list(call.turns.all())
        context.update(
            call=call,
            page_title=presentation.call_title(call),
            outcome=presentation.call_outcome(call),
            duration=presentation.shown_duration(call),
            turns=[
                {
                    "turn": turn,
                    "offset": offset_text((turn.started_at - start).total_seconds()),
                    "sources": knowledge_labels(turn),
                }
                for turn in turns
            ],
            tool_calls=[_tool_call_view(tool_call) for tool_call in call.tool_calls.all()],
            events=[_event_view(event, start) for event in call.events.all()],
            recording=call.recordings.first(),
            analysis=_analysis_view(call.analysis),
            talk_stats=call.talk_stats,
            latency=_latency(turns),
        )
        return context


def _tool_call_view(tool_call) -> dict:
    return {
        "call": tool_call,
        "arguments": pretty_json(tool_call.arguments),
        "result": None if tool_call.result is None else pretty_json(tool_call.result),
    }


def _event_view(event, start) -> dict:
    return {
        "event": event,
        "offset": offset_text((event.occurred_at - start).total_seconds()),
        "payload": pretty_json(event.payload) if event.payload else "",
    }


def _analysis_view(analysis: dict) -> dict:
    """What post-call processing stored (calls/analysis.py), with the structured fields as pretty JSON."""
    if not analysis:
        return {}
    known = ("summary", "outcome", "sentiment", "fields", "provider", "model", "fallback_reason")
    other = {key: value for key, value in analysis.items() if key not in known}
    return {
        **{key: analysis.get(key) for key in known},
        "fields": [
            (name.replace("_", " ").capitalize(), _plain(value), isinstance(value, dict | list))
            for name, value in (analysis.get("fields") or {}).items()
        ],
        "other_json": pretty_json(other) if other else "",
    }


def _plain(value) -> str:
    if isinstance(value, dict | list):
        return pretty_json(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def knowledge_labels(turn: TranscriptTurn) -> list[str]:
    """Where the knowledge behind an agent's turn came from ("Practice FAQ › Hours, page 2"), as stored."""
    found = (turn.metadata or {}).get("knowledge")
    if not isinstance(found, list):
        return []
    return [str(source["label"])[:200] for source in found if isinstance(source, dict) and source.get("label")]


class _LatencyRow(TypedDict):
    turn: TranscriptTurn
    values: list[object]  # one per LATENCY_COLUMNS: milliseconds where the turn's metadata has a number


def _latency(turns: list[TranscriptTurn]) -> dict:
    """One row per agent turn (the STT delay from the caller turn it answers) and p50/p95 per column."""
    rows: list[_LatencyRow] = []
    previous: TranscriptTurn | None = None
    for turn in turns:
        if turn.speaker == TranscriptTurn.Speaker.AGENT:
            metadata = dict(turn.metadata or {})
            stt = (previous.metadata or {}).get(STT_KEY) if previous and previous.speaker == "caller" else None
            values = [stt if key == STT_KEY else metadata.get(key) for key, _label in LATENCY_COLUMNS]
            if any(isinstance(v, int | float) for v in values):
                rows.append({"turn": turn, "values": values})
        previous = turn
    columns = []
    for index, (key, label) in enumerate(LATENCY_COLUMNS):
        present = [value for row in rows if isinstance(value := row["values"][index], int | float)]
        columns.append({"key": key, "label": label, "p50": percentile(present, 0.5), "p95": percentile(present, 0.95)})
    return {"rows": rows, "columns": columns}


class RecordingView(TenantPageMixin, View):
    """The call's audio file, from the default storage, for the page's player (another tenant's: 404).

    Served with HTTP Range (206, 416), like GET /v1/calls/{id}/recording, so the player can seek."""

    def get(self, request, call_id, recording_id):
        recordings = Recording.objects.for_tenant(self.tenant).filter(call_id=call_id)
        recording = get_object_or_404(recordings, pk=recording_id)
        try:
            return recording_response(request, recording)
        except RecordingGone as exc:
            raise Http404("The recording file is gone.") from exc
        except RangeNotSatisfiable as exc:
            return not_satisfiable_response(exc)


class OutboundCallView(TenantPageMixin, FormView):
    """Place a call from the dashboard (what POST /v1/calls does), then follow it on the live page.

    Members and up (write). Without a carrier the call ends at once as `telephony_not_configured`: the
    live page then shows it as Failed, with that reason in words.
    """

    template_name = "calls/outbound.html"
    form_class = OutboundCallForm
    page_title = "Place a call"
    nav_section = "calls"
    required_scopes = {"GET": "write", "HEAD": "write", "POST": "write"}

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "tenant": self.tenant}

    def get_initial(self):
        return {"agent": self.request.GET.get("agent")}

    def form_invalid(self, form):
        return self.render_to_response(self.get_context_data(form=form), status=400)

    def form_valid(self, form):
        values = form.cleaned_data
        try:
            call = services.call_start_outbound(
                tenant=self.tenant,
                agent=values["agent"],
                to_number=values["to_number"],
                from_number=values["from_number"],
                actor=self.audit_actor(),
            )
        except ApplicationError as exc:
            form.add_service_error(exc)
            return self.form_invalid(form)
        messages.info(self.request, f"Calling {call.to_number} from {call.from_number} with {values['agent'].name}.")
        return HttpResponseRedirect(reverse("calls:live-call", args=[call.pk]))


CSV_HEADER = [
    "call_id", "created_at", "started_at", "answered_at", "ended_at", "direction", "status", "outcome",
    "failure_reason", "agent", "from", "to", "duration_seconds", "end_reason",
]  # fmt: skip
EXPORT_BATCH = 500


class CallExportView(TenantPageMixin, View):
    """GET /calls/export.csv?<the list's filters>: every matching call of the tenant as CSV, streamed."""

    def get(self, request):
        calls = selectors.call_list(tenant=self.tenant).select_related("agent")
        filterset = CallListFilter(request.GET or None, queryset=calls, request=request)
        if filterset.is_bound and not filterset.is_valid():
            problems = "; ".join(f"{name}: {' '.join(errors)}" for name, errors in filterset.form.errors.items())
            return HttpResponse(f"Some filters are not valid: {problems}", status=400, content_type="text/plain")
        day = timezone.now().strftime("%Y-%m-%d")
        return csv_response(f"calls-{day}.csv", CSV_HEADER, _csv_rows(filterset.qs))


def _csv_rows(calls):
    for call in calls.iterator(chunk_size=EXPORT_BATCH):
        outcome = presentation.call_outcome(call)
        yield [
            call.pk,
            _iso(call.created_at),
            _iso(call.started_at),
            _iso(call.answered_at),
            _iso(call.ended_at),
            call.direction,
            call.status,
            outcome.label,
            outcome.reason,
            call.agent.name,
            call.from_number,
            call.to_number,
            call.duration_seconds,
            call.end_reason,
        ]


def _iso(moment) -> str:
    return moment.isoformat() if moment else ""
