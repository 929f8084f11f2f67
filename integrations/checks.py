"""Start-up check: a malformed INTEGRATION_CRYPTO_KEY is reported by `manage.py check`, not at first use."""

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def crypto_key_check(app_configs, **kwargs):
    from integrations import vault

    try:
        vault.keyring()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), hint="python manage.py generate_crypto_key", id="integrations.E001")]
    return []
