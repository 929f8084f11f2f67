"""The engines' secrets (provider keys and endpoints), looked up in one place for every reader.

A tenant's own vault credential for a provider (the first usable one, by name) wins over the platform's
setting. `secret_names` says which secrets a tenant has without decrypting anything (the dashboard);
`provider_secrets` decrypts them, in memory, for the code that hands them straight to a provider (a
call's engines, a voice preview, the post-call analysis). Values never reach logs.
"""

import logging
from collections.abc import Collection

from django.conf import settings

from integrations.models import ProviderCredential
from integrations.vault import VaultError, decrypt
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Secret name -> the platform setting that holds the deployment's value.
PLATFORM_SETTINGS = {
    "deepgram_api_key": "DEEPGRAM_API_KEY",
    "deepgram_base_url": "DEEPGRAM_BASE_URL",
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
    "chatterbox_url": "CHATTERBOX_URL",
    "chatterbox_token": "CHATTERBOX_API_TOKEN",
}
# Secret name -> the vault provider whose credential ({"api_key": ...}) a tenant may hold it in.
TENANT_CREDENTIALS = {
    "anthropic_api_key": ProviderCredential.Provider.ANTHROPIC,
    "deepgram_api_key": ProviderCredential.Provider.DEEPGRAM,
}


def secret_names(*, tenant: Tenant) -> frozenset[str]:
    """The names of the secrets `provider_secrets` would find for the tenant; nothing is decrypted."""
    platform = {name for name, setting in PLATFORM_SETTINGS.items() if getattr(settings, setting)}
    providers = set(_credentials(tenant, TENANT_CREDENTIALS.values()).values_list("provider", flat=True))
    own = {name for name, provider in TENANT_CREDENTIALS.items() if provider in providers}
    return frozenset(platform | own)


def provider_secrets(*, tenant: Tenant, names: Collection[str] | None = None) -> dict[str, str]:
    """The tenant's secrets by name (all of them, or only `names`), decrypted; empty ones left out."""
    wanted = set(PLATFORM_SETTINGS) if names is None else set(names) & set(PLATFORM_SETTINGS)
    values = {name: getattr(settings, PLATFORM_SETTINGS[name]) for name in wanted}
    values.update(_tenant_values(tenant, {n: p for n, p in TENANT_CREDENTIALS.items() if n in wanted}))
    return {name: value for name, value in values.items() if value}


def _credentials(tenant: Tenant, providers: Collection[str]):
    return (
        ProviderCredential.objects.for_tenant(tenant)
        .filter(provider__in=list(providers))
        .exclude(verification=ProviderCredential.Verification.FAILED)
        .order_by("name")
    )


def _tenant_values(tenant: Tenant, wanted: dict[str, str]) -> dict[str, str]:
    """The first credential of each wanted provider that decrypts to an api_key, by name."""
    by_provider = {provider: name for name, provider in wanted.items()}
    values: dict[str, str] = {}
    for credential in _credentials(tenant, by_provider.keys()) if by_provider else ():
        name = by_provider[credential.provider]
        if name in values:
            continue
        try:
            values[name] = decrypt(credential)["api_key"]
        except (VaultError, KeyError):
            logger.warning(
                "credential %s of tenant %s is unusable; the platform's setting is used", credential.name, tenant.pk
            )
    return values
