"""The TwiML we answer Twilio with, built with the SDK's `VoiceResponse` (never by string formatting)."""

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse

STREAM_TOKEN_PARAMETER = "token"  # noqa: S105 (a parameter name): the <Parameter> the stream's `start` carries back in customParameters
SORRY = "Sorry, we cannot take your call right now. Please try again later."


def _stream(response: VoiceResponse, url: str, token: str) -> VoiceResponse:
    connect = Connect()
    stream = connect.stream(url=url)
    stream.parameter(name=STREAM_TOKEN_PARAMETER, value=token)
    return response.append(connect)


def connect_stream(url: str, token: str) -> str:
    """Bridge the call's audio to our Media Streams websocket at `url` (bidirectional, with <Connect>)."""
    return str(_stream(VoiceResponse(), url, token))


def reject() -> str:
    """Refuse the call unanswered: the caller hears a busy/rejected tone and nothing is billed."""
    response = VoiceResponse()
    response.reject(reason="rejected")
    return str(response)


def say_and_hang_up(text: str = SORRY) -> str:
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response)


def hang_up() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


def dial(number: str, *, caller_id: str = "", action: str = "") -> str:
    """Hand the call to `number` (a blind transfer); `action` hears how the dial went."""
    response = VoiceResponse()
    options = {"caller_id": caller_id or None, "action": action or None}
    response.dial(number, **{k: v for k, v in options.items() if v is not None})
    return str(response)


def conference(name: str, *, end_on_exit: bool = False, beep: bool = False, say: str = "") -> str:
    """Put the call into the named conference (warm transfers), after reading it `say` if given."""
    response = VoiceResponse()
    if say:
        response.say(say)
    dial_ = Dial()
    dial_.conference(name, end_conference_on_exit=end_on_exit, beep=beep)
    response.append(dial_)
    return str(response)
