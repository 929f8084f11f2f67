"""Fixtures of the knowledge tests: an agent, and the embedding queue recorded instead of run."""

import pytest

from agents.knowledge import embedding, snapshot
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
