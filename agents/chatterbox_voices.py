"""Voice cloning on the Chatterbox TTS node: reference audio goes up, the node's voice id comes back.

The node's voice endpoints (tts_node/app.py): `POST {CHATTERBOX_URL}/voices`, multipart with a
`reference_audio` file and a `name`, answers 201 `{"id", ...}`; `DELETE /voices/{id}` forgets one.
Both take `Authorization: Bearer <CHATTERBOX_API_TOKEN>`. Refusals are
`{"error": {"code", "message"}}`. The streaming synthesis client, which the media worker loads with
livekit, lives in voice/engines/chatterbox_tts.py; this module serves the web process and
needs only httpx.
"""

import logging

import httpx
from django.conf import settings

from core.errors import ApplicationError

log = logging.getLogger(__name__)
VOICES_PATH = "/voices"
UPLOAD_TIMEOUT = httpx.Timeout(60.0, connect=5.0)  # the node computes the voice's conditionals before answering
MAX_REFERENCE_BYTES = 20 * 1024 * 1024
# Container signatures of the formats the node accepts; the node checks length and sample rate.
SIGNATURES = {"WAV": (b"RIFF", 8, b"WAVE"), "FLAC": (b"fLaC", 0, b""), "OGG": (b"OggS", 0, b"")}


class NodeUnavailable(ApplicationError):
    type = "api_error"
    code = "tts_node_unavailable"
    status_code = 503


class NodeFailed(ApplicationError):
    type = "api_error"
    code = "tts_node_error"
    status_code = 502


def _field_error(message: str, code: str) -> ApplicationError:
    return ApplicationError(message, code=code, fields={"reference_audio": [message]})


def check_reference_audio(data: bytes) -> None:
    """Refuse what is plainly not WAV, FLAC or OGG before anything leaves the platform."""
    if not data:
        raise _field_error("The reference audio is empty.", "reference_audio_empty")
    if len(data) > MAX_REFERENCE_BYTES:
        raise _field_error(
            f"The reference audio is over {MAX_REFERENCE_BYTES // (1024 * 1024)} MB.", "reference_audio_too_large"
        )
    for magic, offset, tag in SIGNATURES.values():
        if data.startswith(magic) and data[offset : offset + len(tag)] == tag:
            return
    raise _field_error("Reference audio must be a WAV, FLAC or OGG file.", "reference_audio_format")


def _node() -> tuple[str, dict]:
    url = settings.CHATTERBOX_URL
    if not url:
        # A deployment without a TTS node does not offer cloning: a refusal of the request, not an outage.
        message = "Voice cloning is not available on this deployment: it needs the TTS node (CHATTERBOX_URL)."
        raise ApplicationError(message, code="voice_cloning_unavailable", fields={"reference_audio": [message]})
    token = settings.CHATTERBOX_API_TOKEN
    return url.rstrip("/"), ({"Authorization": f"Bearer {token}"} if token else {})


def _refusal(response: httpx.Response) -> tuple[str, str]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError):
        return "tts_node_error", f"The TTS node answered {response.status_code}."


def upload_voice(*, data: bytes, filename: str, content_type: str, name: str) -> str:
    """Send reference audio to the node; its voice id. 400 for audio the node refuses, 502/503 when it fails."""
    base, headers = _node()
    files = {"reference_audio": (filename or "reference.wav", data, content_type or "application/octet-stream")}
    try:
        response = httpx.post(
            f"{base}{VOICES_PATH}", files=files, data={"name": name}, headers=headers, timeout=UPLOAD_TIMEOUT
        )
    except httpx.HTTPError as exc:
        log.warning("TTS node unreachable for a voice upload: %s", type(exc).__name__)
        raise NodeUnavailable("The TTS node cannot be reached; try again shortly.") from exc
    if response.status_code == 201:
        return str(response.json()["id"])
    code, message = _refusal(response)
    if response.status_code in (400, 413, 415, 422):
        raise _field_error(message, code)
    if response.status_code == 503:
        raise NodeUnavailable(f"The TTS node is not ready: {message}")
    log.warning("TTS node refused a voice upload: %s %s", response.status_code, code)
    raise NodeFailed(f"The TTS node failed to store the voice ({response.status_code}: {message}).")


def delete_voice(voice_id: str) -> None:
    """Forget a voice on the node; best effort (used to undo an upload whose row was not saved)."""
    try:
        base, headers = _node()
        httpx.delete(f"{base}{VOICES_PATH}/{voice_id}", headers=headers, timeout=UPLOAD_TIMEOUT)
    except (ApplicationError, httpx.HTTPError) as exc:
        log.warning("could not delete voice %s on the TTS node: %s", voice_id, type(exc).__name__)
