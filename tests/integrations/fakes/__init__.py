"""Local provider servers for the vault's verification tests (see server.py)."""

from tests.integrations.fakes.server import CREDENTIALS, FakeProviders, fake_providers, providers_fixture

__all__ = ["CREDENTIALS", "FakeProviders", "fake_providers", "providers_fixture"]
