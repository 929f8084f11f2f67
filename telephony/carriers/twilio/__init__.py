"""Twilio as a carrier: Programmable Voice webhooks, Media Streams and the REST API (docs/telephony.md#twilio).

The only code that speaks Twilio, all of it through the official `twilio` SDK where the SDK has it:

- `config`: a tenant's Twilio account (Account SID and auth token) from the credential vault;
- `rest`: the REST client (`twilio.rest.Client`) for dialling, live call updates and numbers;
- `twiml`: the TwiML answers, built with the SDK's `VoiceResponse`;
- `signature`: `X-Twilio-Signature` checks with the SDK's `RequestValidator`, and the URL Twilio signed;
- `webhooks`: the voice and status-callback endpoints Twilio calls;
- `stream`: the Media Streams leg (mu-law 8 kHz over JSON websocket frames) the bridge plays into;
- `consumer`: the Media Streams websocket;
- `conference`: a conference with the agent on the line, held by the bridge (a supervisor's stream joined
  to the caller's, here or relayed from another process).
"""


def install() -> None:
    """Register Twilio with the calls app: the dialer of `twilio` numbers."""
    from calls import carriers
    from telephony.carriers.twilio.dialer import TwilioDialer
    from telephony.models import PhoneNumber

    carriers.register_dialer(PhoneNumber.Provider.TWILIO, TwilioDialer())
