from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "Telephony"

    def ready(self) -> None:
        from telephony import carriers

        carriers.install_all()  # each adapter registers its dialer (and anything else it has) with the apps below
