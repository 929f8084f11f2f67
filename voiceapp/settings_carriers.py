"""Settings of the carriers (GoTo Connect, Twilio), the bridge's WebRTC legs and answering-machine detection.

Part of `voiceapp.settings`, which imports it whole; every variable is in docs/operations.md's configuration table.
"""

from voiceapp.environment import env, env_secret

# The platform's OAuth client at GoTo (docs/telephony.md#connecting-goto): GoTo grants only
# authorization code + refresh token, so each tenant's admin consents once ("Connect GoTo").
GOTO_CLIENT_ID = env.str("GOTO_CLIENT_ID", default="")
GOTO_CLIENT_SECRET = env_secret("GOTO_CLIENT_SECRET")
GOTO_API_BASE_URL = env.str("GOTO_API_BASE_URL", default="https://api.goto.com")
# GoTo's admin API (GET /admin/rest/v1/me: the consenting user's account keys) lives on its older host.
GOTO_ADMIN_API_BASE_URL = env.str("GOTO_ADMIN_API_BASE_URL", default="https://api.getgo.com")
# Devices and calls (web calls): GoTo's reference and the code seen working use this host (docs/telephony.md).
GOTO_WEB_CALLS_BASE_URL = env.str("GOTO_WEB_CALLS_BASE_URL", default="https://webrtc.jive.com")
GOTO_OAUTH_AUTHORIZE_URL = env.str(
    "GOTO_OAUTH_AUTHORIZE_URL", default="https://authentication.logmeininc.com/oauth/authorize"
)
GOTO_OAUTH_TOKEN_URL = env.str("GOTO_OAUTH_TOKEN_URL", default="https://authentication.logmeininc.com/oauth/token")
# The callback registered at GoTo; empty: this site's /numbers/goto/callback/ as the browser reached it.
GOTO_OAUTH_REDIRECT_URI = env.str("GOTO_OAUTH_REDIRECT_URI", default="")
GOTO_OAUTH_SCOPES = env.list(
    "GOTO_OAUTH_SCOPES",
    default=[
        "webrtc.v1.read",
        "webrtc.v1.write",
        "call-events.v1.notifications.manage",
        "call-events.v1.events.read",
        "users.v1.lines.read",
        "call-control.v1.calls.control",
        "voice-admin.v1.read",
    ],
)
# Twilio's REST API (twilio SDK); another base URL sends the SDK's requests there (tests, an egress proxy).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="https://api.twilio.com")
# The public origin Twilio reaches (and signs webhooks for), e.g. https://voice.example.com; empty: the request's.
TWILIO_WEBHOOK_BASE_URL = env.str("TWILIO_WEBHOOK_BASE_URL", default="")


# GoTo allows 10 requests a second per API (notification-channel, call-events, web-calls) by default.
GOTO_RATE_LIMIT_PER_SECOND = env.int("GOTO_RATE_LIMIT_PER_SECOND", default=10)
GOTO_REQUEST_TIMEOUT_SECONDS = env.float("GOTO_REQUEST_TIMEOUT_SECONDS", default=10.0)
GOTO_EVENT_DEDUP_SECONDS = env.int("GOTO_EVENT_DEDUP_SECONDS", default=3600)
# STUN/TURN servers for the bridge's WebRTC legs (e.g. "stun:stun.example.com:3478"); none: host candidates only.
WEBRTC_ICE_SERVERS = env.list("WEBRTC_ICE_SERVERS", default=[])
# The Channels channel the media workers (`manage.py run_media`) take new calls and commands from.
MEDIA_WORKER_CHANNEL = env.str("MEDIA_WORKER_CHANNEL", default="telephony.bridge")


# Answering-machine detection on outbound calls: a short look at how the callee answers.
AMD = {
    "enabled": env.bool("AMD_ENABLED", default=True),
    # Give up listening after this long and treat the callee as a person.
    "max_seconds": env.float("AMD_MAX_SECONDS", default=5.0),
    # One stretch of speech longer than this before any pause is a recorded greeting.
    "machine_speech_seconds": env.float("AMD_MACHINE_SPEECH_SECONDS", default=2.4),
    # A pause this long after a short greeting ("Hello?") means a person is waiting for us.
    "human_silence_seconds": env.float("AMD_HUMAN_SILENCE_SECONDS", default=0.7),
    # How long a machine's greeting may run before we leave the message anyway.
    "max_greeting_seconds": env.float("AMD_MAX_GREETING_SECONDS", default=30.0),
    # After a machine verdict, a pause this long ends the greeting when no record tone comes.
    "greeting_silence_seconds": env.float("AMD_GREETING_SILENCE_SECONDS", default=1.5),
    # A steady single tone at least this long is the record beep.
    "min_beep_seconds": env.float("AMD_MIN_BEEP_SECONDS", default=0.15),
    # Silero's speech probability threshold for AMD (the pipeline's own VAD setting is separate).
    "vad_threshold": env.float("AMD_VAD_THRESHOLD", default=0.5),
    # Wall-clock limit for the optional transcript of the first utterance; past it, the timing cues decide.
    "transcribe_timeout_seconds": env.float("AMD_TRANSCRIBE_TIMEOUT_SECONDS", default=3.0),
}
