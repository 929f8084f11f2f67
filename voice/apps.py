from django.apps import AppConfig


class VoiceConfig(AppConfig):
    """The realtime voice runtime: a call's agent session, its I/O, tools, recorder, metrics and engines."""

    name = "voice"
    verbose_name = "Voice runtime"
