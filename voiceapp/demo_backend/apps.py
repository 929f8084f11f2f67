from django.apps import AppConfig


class DemoBackendConfig(AppConfig):
    name = "voiceapp.demo_backend"
    label = "demo_backend"
    verbose_name = "Demo backend (Demo Dental's bookings; DEBUG only)"
