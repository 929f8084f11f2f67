"""The integration gateway's Prometheus metrics, registered once at import.

Labelled by tenant and service: service names are per tenant ("ticketing" exists for many tenants)
and so are breakers, so a service label alone would mix unrelated backends.
"""

from prometheus_client import Counter, Gauge, Histogram

LABELS = ["tenant", "service"]

requests_total = Counter("vg_integration_requests_total", "Total outbound requests (gateway calls).", LABELS)
request_duration_seconds = Histogram(
    "vg_integration_request_duration_seconds",
    "Request latency: one gateway call, all attempts and waits included.",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
errors_total = Counter(
    "vg_integration_errors_total", "Failed requests, by outcome (http_error, timeout, ...).", [*LABELS, "outcome"]
)
retries_total = Counter("vg_integration_retries_total", "Retry attempts (attempts after the first).", LABELS)
circuit_breaker_state = Gauge(
    "vg_integration_circuit_breaker_state", "Circuit breaker state (0=closed, 1=open, 2=half-open).", LABELS
)
rate_limited_total = Counter("vg_integration_rate_limited_total", "Rate-limited requests (refused).", LABELS)
