"""Embedding in the background without a broker (embedded defaults): one worker thread per process.

With a broker, a document's embedding is a Celery task (agents.tasks). Without one, Celery would run the
task inline, inside the request that saved the document, and a large document would hold the request
for minutes: this runner takes the work instead, in a daemon thread of the process that saved it. The
document row stays the record (agents.knowledge.embedding): if the process ends mid-way, the lease runs
out and the sweep, which `run_outbox` runs on embedded defaults, hands the document out again.
"""

import logging
import os
import queue
import threading

from django.db import close_old_connections, connections

log = logging.getLogger(__name__)


class Runner:
    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[str, str]] = queue.Queue()
        self._queued: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._pid = 0

    def submit(self, tenant_id: str, document_id: str) -> None:
        """Embed the document soon, in this process's worker thread (once, however often it is submitted)."""
        key = (str(tenant_id), str(document_id))
        with self._lock:
            if key in self._queued:
                return
            self._queued.add(key)
            self._busy += 1
            if self._thread is None or self._pid != os.getpid():  # a forked child starts its own thread
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._work, name="knowledge-embedder", daemon=True)
                self._thread.start()
        self._queue.put(key)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every submitted document was handled within `timeout` seconds (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def _work(self) -> None:
        from agents.knowledge.embedding import document_embed

        while True:
            tenant_id, document_id = key = self._queue.get()
            with self._lock:
                self._queued.discard(key)
            close_old_connections()
            try:
                document_embed(tenant_id=tenant_id, document_id=document_id)
            except Exception:  # the row says what is left to do; the sweep hands it out again
                log.exception("knowledge embed of document %s failed in the background runner", document_id)
            finally:
                connections.close_all()  # this thread's own: it may wait long for the next document
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()


RUNNER = Runner()


def submit(tenant_id: str, document_id: str) -> None:
    RUNNER.submit(tenant_id, document_id)
