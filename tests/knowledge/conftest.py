"""Fixtures of the knowledge tests: an agent, the embedding queue recorded instead of run, a web site."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agents.knowledge import embedding, snapshot
from integrations import netguard
from tests import factories


@pytest.fixture(autouse=True)
def _fresh_snapshots():
    snapshot.forget()
    yield
    snapshot.forget()


@pytest.fixture
def agent(tenant):
    return factories.AgentFactory(tenant=tenant, name="Front desk")


@pytest.fixture
def queued(monkeypatch) -> list[tuple[str, str]]:
    """The (tenant id, document id) pairs queued for embedding, in order; nothing runs."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(embedding, "dispatch", lambda tenant_id, document_id: calls.append((tenant_id, document_id)))
    return calls


class Site:
    """A web site on 127.0.0.1 for fetching pages: each path answers (status, headers, body chunks)."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[int, dict[str, str], list[bytes]]] = {}
        self.hits: list[str] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # a body without Content-Length ends when the connection closes

            def do_GET(self):
                site.hits.append(self.path)
                status, headers, chunks = site.pages.get(self.path, (404, {}, [b"not here"]))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for chunk in chunks:
                    self.wfile.write(chunk)
                    self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def page(self, path: str, body: bytes | list[bytes], content_type: str = "text/html", status: int = 200, **headers):
        chunks = body if isinstance(body, list) else [body]
        self.pages[path] = (status, {"Content-Type": content_type, **headers}, chunks)


@pytest.fixture(scope="module")
def _site():
    site = Site()
    yield site
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture
def site(_site, settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True  # the site is on 127.0.0.1; the guard has tests of its own
    netguard.forget()
    _site.pages.clear()
    _site.hits.clear()
    yield _site
    netguard.forget()
