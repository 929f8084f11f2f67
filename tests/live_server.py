"""The real ASGI application (HTTP, websockets, static files) served by Uvicorn on 127.0.0.1 in a test thread.

`asgi_server` gives a test the running server (its `url`, `port`); the server's threads see the rows the
test commits: on PostgreSQL every thread has its own connection and tests use `transactional_db`; on
SQLite the test database lives in memory and every thread uses the test's own connection while the test
runs (what Django's `LiveServerTestCase` does for its server threads). Used by the browser tests and by
the tests that drive the websockets with a plain client.
"""

import contextlib
import socket
import threading
import time
import types

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections, transaction


class LiveServer:
    """Uvicorn serving the ASGI application on 127.0.0.1 in a background thread of this process."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            loop="asyncio",
            lifespan="off",
            ws="websockets-sansio",
            log_config=None,  # keep Django's logging configuration
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=3,
        )
        self.server = uvicorn.Server(config)
        # Not the main thread: Uvicorn installs no signal handlers.
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self, timeout: float = 30.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@pytest.fixture(scope="session")
def _asgi_server_thread():
    from voiceapp.asgi import application

    # Static files from the finders whatever DEBUG and WhiteNoise's settings say (nothing is collected in tests).
    server = LiveServer(ASGIStaticFilesHandler(application))
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def _shared_sqlite_connection():
    """On an in-memory SQLite test database, every thread uses this thread's connection.

    Django keeps one connection per thread, and the test database is a shared-cache in-memory
    database: separate connections would see the same rows but lock each other out at table level
    ("database table is locked", no busy timeout). The server's threads (Uvicorn's loop, Django's
    per-request threads, Channels' database thread) are made to use the test's connection instead,
    as `LiveServerTestCase` does for its server threads. PostgreSQL keeps a connection per thread.
    """
    conn = connections["default"]
    if conn.vendor != "sqlite" or not conn.is_in_memory_db():
        yield
        return
    conn.ensure_connection()
    conn.inc_thread_sharing()
    per_thread = connections._connections
    connections._connections = types.SimpleNamespace(default=conn)
    try:
        with _one_thread_at_a_time(conn):
            yield
    finally:
        connections._connections = per_thread
        conn.dec_thread_sharing()


@contextlib.contextmanager
def _one_thread_at_a_time(conn):
    """One connection, many threads: a transaction (an `atomic` block) or a statement runs whole before another
    thread's starts, as separate connections would see it; interleaved, two threads' savepoints on the one
    connection get mixed up ("no such savepoint"). Only on the shared in-memory test database."""
    lock = threading.RLock()
    enter, exit_ = transaction.Atomic.__enter__, transaction.Atomic.__exit__

    def locked_enter(self):
        lock.acquire()
        try:
            return enter(self)
        except BaseException:
            lock.release()
            raise

    def locked_exit(self, *exc_info):
        try:
            return exit_(self, *exc_info)
        finally:
            lock.release()

    def locked_execute(execute, sql, params, many, context):
        with lock:
            return execute(sql, params, many, context)

    transaction.Atomic.__enter__, transaction.Atomic.__exit__ = locked_enter, locked_exit  # type: ignore[method-assign]
    conn.execute_wrappers.append(locked_execute)
    try:
        yield
    finally:
        conn.execute_wrappers.remove(locked_execute)
        transaction.Atomic.__enter__, transaction.Atomic.__exit__ = enter, exit_  # type: ignore[method-assign]


@pytest.fixture
def asgi_server(_asgi_server_thread, transactional_db):
    """The live server for one test; its threads see the rows this test commits."""
    settings_dict = connections["default"].settings_dict
    max_age = settings_dict["CONN_MAX_AGE"]
    # PostgreSQL: the server's threads close their connections after each request or database call,
    # so none is left open when the test database is flushed or dropped.
    settings_dict["CONN_MAX_AGE"] = 0
    try:
        with _shared_sqlite_connection():
            yield _asgi_server_thread
    finally:
        settings_dict["CONN_MAX_AGE"] = max_age
