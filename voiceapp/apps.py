from django.apps import AppConfig


class VoiceappConfig(AppConfig):
    name = "voiceapp"
    verbose_name = "Platform"

    def ready(self) -> None:
        # Register the platform's metrics at start-up so /metrics lists them before the first call.
        from voiceapp import metrics  # noqa: F401
