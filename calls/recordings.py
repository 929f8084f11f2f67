"""A call's recording as an HTTP response, the same for the dashboard's player and GET /v1/calls/{id}/recording."""

import mimetypes

from calls.models import Recording
from core.http_range import storage_file_response

AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
    "m4a": "audio/mp4",
}


class RecordingGone(Exception):
    """The row is there but its file is not (never saved, or removed from the storage)."""


def recording_content_type(recording: Recording) -> str:
    known = AUDIO_TYPES.get((recording.format or "").lower())
    return known or mimetypes.guess_type(recording.file.name or "")[0] or "application/octet-stream"


def recording_response(request, recording: Recording):
    """The recording's audio from its storage, whole or the one byte range asked for (players seek).

    Raises RecordingGone when there is no file behind the row, and RangeNotSatisfiable for a range past its end.
    """
    name = recording.file.name
    if not name:  # what `not recording.file` tests
        raise RecordingGone
    try:
        return storage_file_response(
            request,
            name=name,
            storage=recording.file.storage,
            content_type=recording_content_type(recording),
            version=recording.updated_at.isoformat() if recording.updated_at else "",
        )
    except FileNotFoundError as exc:  # the retention task removed it, or the storage lost it
        raise RecordingGone from exc
