from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"
    verbose_name = "Telephony"

    def ready(self) -> None:
        from calls import carriers
        from telephony.carriers.goto.dialer import GoToDialer
        from telephony.models import PhoneNumber

        carriers.register_dialer(PhoneNumber.Provider.GOTOCONNECT, GoToDialer())
        from telephony.carriers.twilio.dialer import TwilioDialer

        carriers.register_dialer(PhoneNumber.Provider.TWILIO, TwilioDialer())
        from integrations import vault
        from telephony.carriers.goto.grant import connections_reseal

        vault.register_resealer("GoTo connections", connections_reseal)
