from importlib import import_module

from django.apps import AppConfig

# Every module that defines Prometheus metrics. Each registers its families when imported, and some are
# otherwise imported only when first used (the integration gateway on its first backend call): imported
# here at start-up, /metrics lists every family from the first scrape, so dashboards and alerts see the
# family (and the unlabelled series as 0) instead of a gap until that first use.
METRIC_MODULES = (
    "calls.metrics",
    "integrations.gateway.metrics",
    "telephony.carriers.goto.metrics",
    "voice.metrics",
)


class VoiceappConfig(AppConfig):
    name = "voiceapp"
    verbose_name = "Platform"

    def ready(self) -> None:
        for module in METRIC_MODULES:
            import_module(module)
