"""One inference thread that interleaves many syntheses on one device.

Requests do not run one after another: each is a generator (see engines/base.py) and the thread
steps them in turn, one token or one sentence at a time. Which one goes next is earliest deadline
first: a stream's deadline is the moment its listener runs out of audio (first audio plus the audio
sent so far), and a stream with no audio yet is overdue from the moment it arrived. So new requests
get their first audio quickly, streams far ahead of real time wait, and a stream whose reader has
`buffer_chunks` chunks unread is paused (backpressure). At most `max_active` run at once, up to
`queue_size` more wait, and beyond that `submit` refuses at once (the API answers 503 + Retry-After).

Work other than synthesis that must touch the model (loading it, computing a voice's conditionals)
goes through `call()` so it runs on the same thread between steps.
"""

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tts_node.audio import Chunker, Resampler, to_pcm16
from tts_node.errors import Overloaded

log = logging.getLogger(__name__)
END = object()  # sentinel: the stream is complete


@dataclass
class JobStats:
    submitted_at: float = field(default_factory=time.monotonic)
    started_at: float | None = None
    first_audio_at: float | None = None
    finished_at: float | None = None
    audio_seconds: float = 0.0
    busy_seconds: float = 0.0  # time the inference thread spent on this job

    @property
    def time_to_first_audio(self) -> float | None:
        return None if self.first_audio_at is None else self.first_audio_at - self.submitted_at


class Job:
    """One synthesis: its generator on the inference thread, its chunks on the event loop's side."""

    _ids = itertools.count(1)

    def __init__(
        self, steps: Iterator, *, source_rate: int, output_rate: int, chunk_ms: int, buffer_chunks: int
    ) -> None:
        self.id = next(self._ids)
        self.stats = JobStats()
        self._steps = steps
        self._source_rate = source_rate
        self._resampler = Resampler(source_rate, output_rate)
        self._chunker = Chunker(output_rate, chunk_ms)
        self._output_rate = output_rate
        self._buffer_chunks = buffer_chunks
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._unread = 0
        self._lock = threading.Lock()
        self.cancelled = False

    # --- event loop side -------------------------------------------------------------------------
    async def chunks(self):
        """PCM16 chunks as they are generated; raises the engine's error if it failed."""
        while True:
            item = await self._queue.get()
            with self._lock:
                self._unread -= 1
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def cancel(self) -> None:
        self.cancelled = True

    # --- inference thread side -------------------------------------------------------------------
    def slack(self, now: float) -> float:
        """Seconds of audio the listener has left before running dry (negative: overdue)."""
        if self.stats.first_audio_at is None:
            return self.stats.submitted_at - now
        return self.stats.first_audio_at + self.stats.audio_seconds - now

    def backlogged(self) -> bool:
        with self._lock:
            return self._unread >= self._buffer_chunks

    def step(self) -> bool:
        """One unit of work; False once the job is over (finished, failed or cancelled)."""
        if self.cancelled:
            self._close()
            return False
        began = time.monotonic()
        try:
            audio = next(self._steps)
        except StopIteration:
            self._finish()
            return False
        except Exception as exc:
            log.exception("synthesis job %s failed", self.id)
            self._close()
            self._put(exc)
            return False
        finally:
            self.stats.busy_seconds += time.monotonic() - began
        if audio is not None and len(audio):
            self._deliver(audio)
        return True

    def fail(self, exc: BaseException) -> None:
        self._close()
        self._put(exc)

    def _deliver(self, audio: np.ndarray, *, last: bool = False) -> None:
        self.stats.audio_seconds += len(audio) / self._source_rate
        for chunk in self._chunker.push(to_pcm16(self._resampler.push(audio, last=last))):
            self._put(chunk)

    def _finish(self) -> None:
        self._deliver(np.zeros(0, dtype=np.float32), last=True)
        for chunk in self._chunker.flush():
            self._put(chunk)
        self.stats.finished_at = time.monotonic()
        self._put(END)

    def _put(self, item: Any) -> None:
        if isinstance(item, bytes) and self.stats.first_audio_at is None:
            self.stats.first_audio_at = time.monotonic()
        with self._lock:
            self._unread += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._steps.close()


class Scheduler:
    def __init__(self, *, max_active: int, queue_size: int, worker_context: Callable = contextlib.nullcontext) -> None:
        self.max_active = max_active
        self.queue_size = queue_size
        self._worker_context = worker_context
        self._waiting: deque[Job] = deque()
        self._active: list[Job] = []
        self._calls: deque[tuple[Callable, Future]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        self.on_job_done: Callable[[Job], None] = lambda job: None

    @property
    def capacity(self) -> int:
        return self.max_active + self.queue_size

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name="tts-inference", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def submit(self, job: Job, *, retry_after_s: int = 1) -> Job:
        """Queue a job, or refuse at once when `capacity` jobs are already running or waiting."""
        with self._wake:
            if len(self._active) + len(self._waiting) >= self.capacity:
                raise Overloaded(
                    f"The TTS node is at capacity ({self.capacity} syntheses); retry shortly.",
                    headers={"Retry-After": str(retry_after_s)},
                )
            self._waiting.append(job)
            self._wake.notify()
        return job

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` on the inference thread between synthesis steps."""
        future: Future = Future()
        with self._wake:
            self._calls.append((fn, future))
            self._wake.notify()
        return future

    def _run(self) -> None:
        with self._worker_context():
            while self._running:
                self._run_calls()
                job = self._next_job()
                if job is None:
                    continue
                if job.stats.started_at is None:
                    job.stats.started_at = time.monotonic()
                if not job.step():
                    self._retire(job)
            for job in [*self._active, *self._waiting]:
                job.fail(RuntimeError("the TTS node is shutting down"))

    def _run_calls(self) -> None:
        while self._calls:
            fn, future = self._calls.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller, who decides
                    future.set_exception(exc)

    def _next_job(self) -> Job | None:
        """The runnable job with the least slack; waits briefly when none can run."""
        with self._wake:
            while self._waiting and len(self._active) < self.max_active:
                self._active.append(self._waiting.popleft())
            now = time.monotonic()
            runnable = [job for job in self._active if job.cancelled or not job.backlogged()]
            if not runnable:
                self._wake.wait(timeout=0.005 if self._active else 0.5)
                return None
            return min(runnable, key=lambda job: -1e9 if job.cancelled else job.slack(now))

    def _retire(self, job: Job) -> None:
        with self._wake:
            self._active.remove(job)
        self.on_job_done(job)
