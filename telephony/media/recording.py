"""The call recording: both legs mixed into one mono WAV while the call runs, then stored (docs/telephony.md#recordings).

`CallMix` lives in the audio loop. Each leg (the caller's decoded audio, the agent's audio as it
is sent) is resampled to the recording rate and laid on one timeline. A frame comes with its time
on its leg's own media clock (`media_time`): the caller's RTP timestamp, the agent's slot on the
paced track's schedule. Both clocks are mapped onto the mix's clock by the quickest arrival seen
(a frame can arrive late, never early), so a frame lands where it was spoken however late the loop
got to it: a stall that delays a burst of caller frames delays none of them in the recording, and
the lanes stay together over a long call. A gap in a leg's media clock (nothing sent, lost packets)
is silence; a clock that jumps (a new stream) is mapped afresh. A frame without a media time is
placed by its arrival, with `SLACK` of jitter absorbed. The part of the timeline that both legs
have passed is summed (with clipping) and appended to a temporary WAV file, so memory holds at most
`max_lag` seconds per leg however long the call: a leg that stops sending altogether is taken as
silent once the other is `max_lag` ahead.

`recording_store()` runs after the call, outside the audio loop (it uses the ORM and the storage
API): it saves the file through the default storage under `Recording.file`'s upload_to, with its
expiry per `RETENTION_DAYS["recordings"]`, and removes the temporary file. Expired recordings are
deleted, file and row, by `core.retention.retention_apply` (the rule is in calls/retention.py).
"""

import contextlib
import logging
import os
import tempfile
import time
import wave
from collections.abc import Callable
from datetime import timedelta
from typing import IO

import numpy as np
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from livekit import rtc

from calls.models import Call, Recording
from core.errors import NotFound
from telephony.media.tracks import ToRate
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SLACK = 0.06  # arrival jitter (s) absorbed without inserting silence, for frames placed by arrival
MEDIA_SLACK = 0.002  # rounding (s) absorbed for frames placed by their media time
RESYNC = 0.5  # a media clock this far off its mapping jumped (a new stream): it is mapped afresh
FLUSH_EVERY = 0.2  # seconds of mixed audio written at a time


class RecordingCallNotFound(NotFound):
    code = "call_not_found"


class _Lane:
    """One leg's audio waiting to be mixed: samples from the mix's flushed point up to `cursor`."""

    def __init__(self, rate: int):
        self.to_rate = ToRate(rate)
        self.chunks: list[np.ndarray] = []
        self.cursor = 0  # timeline index (samples at the mix rate) just after this leg's last sample
        self.offset: float | None = None  # mix clock minus this leg's media clock

    def place(self, media_time: float, arrived: float) -> float:
        """The mix-clock time of a frame that starts at `media_time` on this leg's clock and `arrived` then."""
        lateness = arrived - media_time
        if self.offset is None or lateness < self.offset - RESYNC:
            self.offset = lateness  # the first frame, or the media clock jumped ahead
        self.offset = min(self.offset, lateness)  # the quickest arrival yet is the truest mapping
        return media_time + self.offset

    def append(self, samples: np.ndarray, *, at: int, slack: int, overlap: bool = False) -> None:
        """Lay `samples` at timeline index `at`; with `overlap`, the part before the cursor (already laid) is dropped."""
        if at > self.cursor + slack:
            self.chunks.append(np.zeros(at - self.cursor, dtype=np.int16))
            self.cursor = at
        elif overlap and at < self.cursor - slack:
            samples = samples[self.cursor - at :]
        self.chunks.append(samples)
        self.cursor += len(samples)

    def take(self, count: int) -> np.ndarray:
        """The next `count` samples (silence where the leg has none); the rest stays."""
        pending = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        head, rest = pending[:count], pending[count:]
        self.chunks = [rest] if len(rest) else []
        if len(head) < count:
            head = np.concatenate([head, np.zeros(count - len(head), dtype=np.int16)])
        return head

    @property
    def pending(self) -> int:
        return sum(len(chunk) for chunk in self.chunks)


class CallMix:
    """Both legs mixed into one mono WAV at settings.CALL_RECORDING_SAMPLE_RATE (16 kHz), written to a temp file while the call runs."""

    def __init__(
        self,
        *,
        sample_rate: int | None = None,
        directory: str | None = None,
        max_lag: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.sample_rate = sample_rate or settings.CALL_RECORDING_SAMPLE_RATE
        self._directory, self._clock = directory, clock
        self._max_lag = int(max_lag * self.sample_rate)
        self._slack = int(SLACK * self.sample_rate)
        self._media_slack = int(MEDIA_SLACK * self.sample_rate)
        self._lanes = {"caller": _Lane(self.sample_rate), "agent": _Lane(self.sample_rate)}
        self._origin: float | None = None
        self._flushed = 0  # timeline index up to which the mix is in the file
        self._wav: wave.Wave_write | None = None
        self._file: IO[bytes] | None = None
        self.path: str | None = None
        self._closed = False

    def caller(self, frame: rtc.AudioFrame, *, media_time: float | None = None, held: float = 0.0) -> None:
        """The caller's audio as it arrives: it ended `held` seconds ago (the time it spent in the receiver);
        `media_time` is its start on the caller's clock."""
        self._add("caller", frame, ends=held, media_time=media_time)

    def agent(self, frame: rtc.AudioFrame, *, media_time: float | None = None) -> None:
        """The agent's audio as it is sent (it starts playing now); `media_time`: its start on the agent's clock."""
        self._add("agent", frame, ends=None, media_time=media_time)

    def _add(self, leg: str, frame: rtc.AudioFrame, *, ends: float | None, media_time: float | None) -> None:
        """`ends`: how long ago the frame ended (the caller's); None: it starts now (the agent's)."""
        if self._closed:
            return
        lane = self._lanes[leg]
        samples = np.frombuffer(lane.to_rate.convert(frame), dtype=np.int16)
        if not len(samples):
            return
        arrived = self._clock() - (0.0 if ends is None else ends + len(samples) / self.sample_rate)
        starts = arrived if media_time is None else lane.place(media_time, arrived)
        if self._origin is None:
            self._origin = starts  # the recording begins with the first audio of either leg
        position = self._index(starts)
        if media_time is not None and position < lane.cursor - RESYNC * self.sample_rate:
            lane.offset = None  # the media clock went back (a new stream): map it afresh
            position = self._index(lane.place(media_time, arrived))
        if media_time is None:
            lane.append(samples, at=max(position, self._flushed), slack=self._slack)
        else:
            lane.append(samples, at=max(position, self._flushed), slack=self._media_slack, overlap=True)
        try:
            self._flush()
        except OSError:  # disk full, temp dir gone: the call goes on without its recording
            logger.exception("call recording stopped: cannot write %s", self.path)
            self._abandon()

    def _index(self, seconds: float) -> int:
        assert self._origin is not None  # _add set it with the first audio, before any index
        return round((seconds - self._origin) * self.sample_rate)

    def _flush(self, *, final: bool = False) -> None:
        cursors = [lane.cursor for lane in self._lanes.values()]
        # Both legs are past `ready`; a leg more than max_lag behind the other is taken as silent.
        ready = max(cursors) if final else max(min(cursors), max(cursors) - self._max_lag)
        count = ready - self._flushed
        if count <= 0 or (not final and count < FLUSH_EVERY * self.sample_rate):
            return
        mixed = sum(lane.take(count).astype(np.int32) for lane in self._lanes.values())
        self._write(np.clip(mixed, -32768, 32767).astype(np.int16))
        self._flushed = ready
        for lane in self._lanes.values():
            lane.cursor = max(lane.cursor, ready)

    def _write(self, samples: np.ndarray) -> None:
        if self._wav is None:
            handle, self.path = tempfile.mkstemp(prefix="call-", suffix=".wav", dir=self._directory)
            self._file = os.fdopen(handle, "wb")  # open for the whole call; closed in close()
            self._wav = wave.open(self._file, "wb")  # noqa: SIM115 - written for the whole call
            self._wav.setnchannels(1)
            self._wav.setsampwidth(2)
            self._wav.setframerate(self.sample_rate)
        self._wav.writeframesraw(samples.tobytes())  # the header is completed on close

    def _abandon(self) -> None:
        self._closed = True
        for lane in self._lanes.values():
            lane.chunks = []
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            assert self.path is not None  # created with the file (_write)
            with contextlib.suppress(OSError):
                os.remove(self.path)
        self._wav = self._file = self.path = None

    @property
    def buffered_seconds(self) -> float:
        """Audio held in memory, not yet in the file (both legs)."""
        return sum(lane.pending for lane in self._lanes.values()) / self.sample_rate

    @property
    def duration(self) -> float:
        return self._flushed / self.sample_rate

    def close(self) -> tuple[str, float] | None:
        """Write the rest; (temp wav path, duration seconds), or None if nothing was heard."""
        if self._closed:
            return (self.path, self.duration) if self.path else None
        try:
            self._flush(final=True)
            if self._wav is not None:
                self._wav.close()  # completes the header; wave leaves a file object it was given open
                assert self._file is not None  # opened with the wav (_write), dropped with it (_abandon)
                self._file.close()
        except OSError:
            logger.exception("call recording lost: cannot finish %s", self.path)
            self._abandon()
            return None
        self._closed = True
        return (self.path, self.duration) if self.path else None


# --- storing ---------------------------------------------------------------------------------------


def _wav_format(path: str) -> tuple[int, int]:
    with wave.open(path, "rb") as wav:
        return wav.getframerate(), wav.getnchannels()


def recording_store(*, call_id, tenant_id, path: str, duration: float) -> Recording:
    """Save the call's mixed WAV through the default storage as its one Recording; removes `path`.

    A second store for the same call replaces the first (its file included). Runs the ORM: call it
    with `database_sync_to_async` from the media loop.
    """
    try:
        return _store(call_id=call_id, tenant_id=tenant_id, path=path, duration=duration)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


@transaction.atomic
def _store(*, call_id, tenant_id, path: str, duration: float) -> Recording:
    call = _find_call(call_id=call_id, tenant_id=tenant_id)
    sample_rate, channels = _wav_format(path)
    recording = Recording.objects.for_tenant(call.tenant).select_for_update().filter(call=call).first()
    old_file = recording.file.name if recording is not None else None
    recording = recording or Recording(tenant_id=call.tenant_id, call=call)
    with open(path, "rb") as handle:
        recording.file.save(f"{call.pk}.wav", File(handle), save=False)
    recording.format, recording.sample_rate, recording.channels = "wav", sample_rate, channels
    recording.duration_seconds = duration
    recording.size_bytes = recording.file.size
    recording.expires_at = timezone.now() + timedelta(days=settings.RETENTION_DAYS["recordings"])
    stored = recording.file.name
    assert stored is not None  # FieldFile.save has just named it
    transaction.on_commit(lambda: _drop_file(recording.file.storage, old_file, keep=stored))
    try:
        recording.save()
    except Exception:
        recording.file.storage.delete(stored)  # the row is not there: neither should its file be
        raise
    return recording


def _find_call(*, call_id, tenant_id) -> Call:
    try:
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        call = Call.objects.for_tenant(tenant).filter(pk=call_id).first() if tenant else None
    except (ValueError, ValidationError):  # not a UUID
        call = None
    if call is None:
        raise RecordingCallNotFound(f"Unknown call {call_id} for this tenant.")
    return call


def _drop_file(storage, name: str | None, *, keep: str) -> None:
    if name and name != keep:
        storage.delete(name)
