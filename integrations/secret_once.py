"""A new secret (API key, webhook signing secret) held for exactly one page view after the POST that made it.

The POST redirects (post/redirect/get), so reloading the page that shows the secret never creates a
second key. Between the two requests the secret waits in the session sealed with the vault's
AES-256-GCM key, bound to the session, the tenant and the object, so the session store never holds it
in clear; the first GET takes it out, and one that comes later than `HOLD_SECONDS` finds nothing.
"""

import base64
import time

from integrations import vault

SESSION_KEY = "secret_once"
HOLD_SECONDS = 600


def _binding(request, kind: str, object_id) -> str:
    if request.session.session_key is None:
        request.session.save()
    return f"{kind}:{object_id}:{request.session.session_key}"


def hold(request, *, kind: str, object_id, secret: str, extra: dict | None = None) -> None:
    """Keep `secret` for the next view of this object's page in this session (sealed, not in clear)."""
    binding = _binding(request, kind, object_id)
    key_id, nonce, ciphertext = vault.encrypt(
        tenant_id=request.tenant.pk, credential_id=binding, secret={"secret": secret}
    )
    request.session[SESSION_KEY] = {
        "binding": binding,
        "key_id": key_id,
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "at": time.time(),
        "extra": extra or {},
    }


def take(request, *, kind: str, object_id, now: float | None = None) -> tuple[str, dict] | None:
    """(secret, extra) held for this object, removed from the session; None if shown already, expired or another's."""
    held = request.session.get(SESSION_KEY)
    binding = _binding(request, kind, object_id)
    if not held or held.get("binding") != binding:
        return None
    del request.session[SESSION_KEY]
    if (now if now is not None else time.time()) - held["at"] > HOLD_SECONDS:
        return None
    try:
        opened = vault.open_sealed(
            key_id=held["key_id"],
            nonce=base64.b64decode(held["nonce"]),
            ciphertext=base64.b64decode(held["ciphertext"]),
            tenant_id=request.tenant.pk,
            bound_id=binding,
            label="The new secret",
        )
    except vault.VaultError:
        return None
    return opened["secret"], held["extra"]
