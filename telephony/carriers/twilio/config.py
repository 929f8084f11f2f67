"""A tenant's Twilio account: the one place its credential is read from the vault."""

from dataclasses import dataclass, field

from integrations import vault
from integrations.models import ProviderCredential


@dataclass(frozen=True)
class TwilioAccount:
    account_sid: str
    auth_token: str = field(repr=False)  # the secret: never in a repr, a log line or an answer


def account_for_tenant(tenant_id) -> TwilioAccount | None:
    """The tenant's Twilio account: its newest `twilio` credential in the vault (None when it has none).

    The credential is decrypted at every use, so a rotated auth token takes effect on the next webhook.
    """
    credential = (
        ProviderCredential.objects.for_tenant(tenant_id)
        .filter(provider=ProviderCredential.Provider.TWILIO)
        .order_by("-created_at", "-pk")
        .first()
    )
    if credential is None:
        return None
    secret = vault.decrypt(credential)
    return TwilioAccount(account_sid=secret["account_sid"], auth_token=secret["auth_token"])
