"""Per-turn latencies (Prometheus, by tenant), from the framework's own measurements.

The framework stamps every conversation item with a `MetricsReport` (`ChatMessage.metrics`): the
caller's turns carry the STT delay, the agent's carry LLM time-to-first-token, TTS
time-to-first-audio and end-of-speech-to-first-agent-audio. We observe those as Prometheus
histograms labelled by tenant and keep them, in milliseconds, in the turn's metadata.

The framework's end-to-end figure belongs to a reply, not to the caller's turn: a filler said while a
tool runs (`session.say`) carries none, and the reply after the tool carries the time to the tool's
result. `TurnLatency` puts it on the first agent audio after the caller stopped, whatever said it.
"""

import collections
from typing import TypeGuard

from prometheus_client import Histogram

from calls import latency

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

stt_latency_seconds = Histogram(
    "stt_latency_seconds", "End of caller speech to final transcript.", ["tenant"], buckets=LATENCY_BUCKETS
)
llm_latency_seconds = Histogram(
    "llm_latency_seconds", "LLM time to first token.", ["tenant", "model"], buckets=LATENCY_BUCKETS
)
tts_latency_seconds = Histogram(
    "tts_latency_seconds", "TTS time to first audio.", ["tenant", "voice"], buckets=LATENCY_BUCKETS
)
e2e_latency_seconds = Histogram(
    "e2e_latency_seconds", "End of caller speech to first agent audio.", ["tenant"], buckets=LATENCY_BUCKETS
)

# MetricsReport key -> the turn's metadata key (named by the calls app, which stores the turns)
CALLER_METRICS = {"transcription_delay": latency.STT_MS, "end_of_turn_delay": latency.END_OF_TURN_MS}
AGENT_METRICS = {
    "llm_node_ttft": latency.LLM_TTFT_MS,
    "tts_node_ttfb": latency.TTS_TTFB_MS,
    "e2e_latency": latency.E2E_MS,
}


def turn_metadata(role: str, report: dict) -> dict:
    """The turn's latencies in milliseconds and the providers that served it."""
    names = CALLER_METRICS if role == "user" else AGENT_METRICS
    metadata = {key: round(report[name] * 1000) for name, key in names.items() if _usable(report.get(name))}
    for part in ("stt", "llm", "tts"):
        model = report.get(f"{part}_metadata") or {}
        if model.get("model_provider"):
            metadata[f"{part}_provider"] = model["model_provider"]
        if model.get("model_name") and model["model_name"] != "unknown":
            metadata[f"{part}_model"] = model["model_name"]
    return metadata


def observe(*, tenant: str, role: str, report: dict, voice: str = "") -> None:
    """Feed one turn's framework metrics into the latency histograms."""
    if role == "user":
        if _usable(value := report.get("transcription_delay")):
            stt_latency_seconds.labels(tenant=tenant).observe(value)
        return
    model = (report.get("llm_metadata") or {}).get("model_name") or "unknown"
    for name, histogram, labels in (
        ("llm_node_ttft", llm_latency_seconds, {"tenant": tenant, "model": model}),
        ("tts_node_ttfb", tts_latency_seconds, {"tenant": tenant, "voice": voice or "default"}),
        ("e2e_latency", e2e_latency_seconds, {"tenant": tenant}),
    ):
        if _usable(value := report.get(name)):
            histogram.labels(**labels).observe(value)


def _usable(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and value >= 0


class TurnLatency:
    """Rewrites `e2e_latency` on the session's conversation items, before anyone else reads them.

    Register `on_item` for `conversation_item_added` first. For every agent message that was heard,
    the caller turn it answers is the last one that stopped before it started: the first such message
    gets `started_speaking_at - stopped_speaking_at` (a filler included), later ones of the same turn
    get none, so each caller turn has exactly one end-to-end latency.
    """

    def __init__(self):
        self._stops: collections.deque[float] = collections.deque(maxlen=16)  # caller turns' ends
        self._answered: float | None = None  # the end of the caller turn that has its latency

    def on_item(self, event) -> None:
        item = event.item
        report = getattr(item, "metrics", None)
        role = getattr(item, "role", None)
        if report is None or role not in ("user", "assistant"):
            return
        if role == "user":
            if _usable(stopped := report.get("stopped_speaking_at")):
                self._stops.append(stopped)
            return
        started = report.get("started_speaking_at")
        if not _usable(started):
            return
        answers = max((stop for stop in self._stops if stop <= started), default=None)
        if answers is None or answers == self._answered:
            report.pop("e2e_latency", None)  # the greeting, or not the first audio of its turn
            return
        report["e2e_latency"] = started - answers
        self._answered = answers
