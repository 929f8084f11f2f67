"""Print a fresh INTEGRATION_CRYPTO_KEY entry: `<key id>:<base64 of 32 random bytes>`."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.vault import generate_key_value


class Command(BaseCommand):
    help = (
        "Print a new AES-256 key for the credential vault as `<key id>:<base64>`. Put it first in "
        "INTEGRATION_CRYPTO_KEY (comma-separated, newest first), keep the older keys after it, run "
        "rotate_credential_keys, and only then drop the old keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="key_id", help="The key id (default: k<YYYYMMDD>). Letters, digits, _ . -")

    def handle(self, *args, key_id: str | None = None, **options):
        key_id = key_id or timezone.now().strftime("k%Y%m%d")
        try:
            value = generate_key_value(key_id)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        # Only the value on stdout, so `$(python manage.py generate_crypto_key)` captures it cleanly.
        self.stdout.write(value)
