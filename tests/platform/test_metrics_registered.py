"""Every metric family is on /metrics from start-up, not only after the code that uses it first runs."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# A fresh interpreter: in this test process other tests have long imported the gateway.
SCRAPE_AT_START = """
import sys
import django
django.setup()
assert "integrations.gateway.client" not in sys.modules, "the gateway itself was loaded"
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
print(Client().get("/metrics").content.decode())
"""

FAMILIES = (
    "vg_integration_requests_total",
    "vg_integration_request_duration_seconds",
    "vg_integration_errors_total",
    "vg_integration_retries_total",
    "vg_integration_circuit_breaker_state",
    "vg_integration_rate_limited_total",
    "vg_telephony_pbx_requests_total",
    "calls_total",
    "call_duration_seconds",
)


def test_metrics_lists_every_family_before_any_of_them_is_used():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "voiceapp.settings_test", "PYTHONPATH": str(REPO_ROOT)}

    result = subprocess.run(
        [sys.executable, "-c", SCRAPE_AT_START], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )

    assert result.returncode == 0, result.stderr[-2000:]
    for family in FAMILIES:
        assert f"# TYPE {family} " in result.stdout, family
