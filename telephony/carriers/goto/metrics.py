"""Prometheus metrics of the GoTo REST client, notification channels and call states, registered once at import.

Labels stay low-cardinality on purpose: operation names and outcome classes, never call ids.
"""

from prometheus_client import Counter, Gauge, Histogram

pbx_requests_total = Counter(
    "vg_telephony_pbx_requests_total",
    "HTTP requests sent to the PBX call-control API, by operation and outcome (each attempt counts).",
    ["operation", "outcome"],
)
pbx_request_duration_seconds = Histogram(
    "vg_telephony_pbx_request_duration_seconds",
    "One call-control operation, all attempts, rate-limit waits and backoffs included.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
pbx_retries_total = Counter("vg_telephony_pbx_retries_total", "Attempts after the first, by operation.", ["operation"])
pbx_token_fetches_total = Counter(
    "vg_telephony_pbx_token_fetches_total", "OAuth2 token requests to GoToConnect, by outcome.", ["outcome"]
)
pbx_events_total = Counter(
    "vg_telephony_pbx_events_total",
    "Event messages received from the PBX, by event name and outcome (handled, duplicate, handler_error).",
    ["event", "outcome"],
)
pbx_event_reconnects_total = Counter(
    "vg_telephony_pbx_event_reconnects_total", "Reconnections of the PBX event WebSocket, by reason.", ["reason"]
)
pbx_event_connected = Gauge(
    "vg_telephony_pbx_event_connected", "Event WebSocket subscriptions of this process that are live now."
)
