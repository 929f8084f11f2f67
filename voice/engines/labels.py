"""Provider names the pipeline reports (metrics, dashboard): real services and offline engines."""

DEEPGRAM = "deepgram"
ANTHROPIC = "anthropic"
OPENAI_COMPATIBLE = "openai-compatible"
CHATTERBOX = "chatterbox"
OFFLINE_WHISPER = "offline-whisper"
OFFLINE_RESPONDER = "offline-responder"
OFFLINE_PIPER = "offline-piper"

OFFLINE = frozenset({OFFLINE_WHISPER, OFFLINE_RESPONDER, OFFLINE_PIPER})


def is_offline(label: str) -> bool:
    return label in OFFLINE
