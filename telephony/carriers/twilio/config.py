"""A tenant's Twilio account: the one place its credential is read from the vault."""

import logging
from dataclasses import dataclass, field

from integrations import vault
from integrations.models import ProviderCredential

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str = field(repr=False)  # the secret: never in a repr, a log line or an answer


def account_for_tenant(tenant_id) -> TwilioAccount | None:
    """The tenant's Twilio account: its newest `twilio` credential in the vault (None when it has none).

    The credential is decrypted at every use, so a rotated auth token takes effect on the next webhook.
    One that cannot be decrypted (its key gone from INTEGRATION_CRYPTO_KEY, or damaged) counts as none,
    with a log line naming it: every webhook is then refused (403), never a 500.
    """
    credential = (
        ProviderCredential.objects.for_tenant(tenant_id)
        .filter(provider=ProviderCredential.Provider.TWILIO)
        .order_by("-created_at", "-pk")
        .first()
    )
    if credential is None:
        return None
    try:
        secret = vault.decrypt(credential)
    except vault.VaultError as exc:
        logger.warning("Twilio credential of tenant %s unusable: %s", tenant_id, exc.message)
        return None
    return TwilioAccount(account_sid=secret["account_sid"], auth_token=secret["auth_token"])
