"""The platform's own Prometheus metrics; HTTP and database metrics come from django-prometheus.

The families are listed in docs/operations.md#observability.
"""

from prometheus_client import Counter, Histogram

calls_total = Counter("calls_total", "Calls that reached a final state.", ["tenant", "direction", "status"])
call_duration_seconds = Histogram(
    "call_duration_seconds",
    "Duration of ended calls, from answer to end.",
    ["tenant", "direction"],
    buckets=(5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
