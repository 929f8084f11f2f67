"""Prometheus metrics of the node: requests, time to first audio, real-time factor, queue, GPU memory.

Each app gets its own registry, so several nodes (tests, the bench) can live in one process.
"""

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tts_requests", "HTTP requests by endpoint and status.", ["endpoint", "status"], registry=self.registry
        )
        self.time_to_first_audio = Histogram(
            "tts_time_to_first_audio_seconds",
            "From a synthesis request's arrival to its first audio chunk.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.real_time_factor = Histogram(
            "tts_real_time_factor",
            "Wall time from start to last audio, divided by the audio's duration (below 1: faster than real time).",
            buckets=RTF_BUCKETS,
            registry=self.registry,
        )
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio synthesized.", registry=self.registry)
        self.queue_depth = Gauge("tts_queue_depth", "Syntheses waiting for a slot.", registry=self.registry)
        self.active = Gauge("tts_active_syntheses", "Syntheses being generated now.", registry=self.registry)
        self.gpu_memory = Gauge(
            "tts_gpu_memory_bytes", "Accelerator memory (free, total, allocated).", ["kind"], registry=self.registry
        )

    def bind(self, *, waiting: Callable[[], int], active: Callable[[], int], memory: Callable[[], dict | None]) -> None:
        """Gauges read at scrape time."""
        self.queue_depth.set_function(waiting)
        self.active.set_function(active)
        self._memory = memory

    def render(self) -> bytes:
        for kind, value in (self._memory() or {}).items():
            self.gpu_memory.labels(kind=kind).set(value)
        return generate_latest(self.registry)
