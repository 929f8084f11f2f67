"""Re-encrypt every stored credential under the newest INTEGRATION_CRYPTO_KEY key (idempotent)."""

from django.core.management.base import BaseCommand, CommandError

from integrations import vault
from integrations.services import credential_reencrypt_all
from integrations.webhooks.services import webhook_endpoints_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt all credentials, webhook signing secrets and other apps' sealed rows (GoTo grants) under the first (newest) key of INTEGRATION_CRYPTO_KEY. Safe to run "
        "again. Credentials that cannot be decrypted are listed and keep their old ciphertext; the "
        "command then exits with status 1."
    )

    def handle(self, *args, **options):
        report = credential_reencrypt_all()
        self.stdout.write(
            f"Key {report.key_id!r}: {report.reencrypted} re-encrypted, {report.already_current} already "
            f"under it, {len(report.failed)} could not be decrypted."
        )
        endpoints, endpoint_failures = webhook_endpoints_reencrypt()
        if endpoints or endpoint_failures:
            self.stdout.write(f"Webhook signing secrets: {endpoints} re-encrypted, {len(endpoint_failures)} failed.")
        report.failed.extend(endpoint_failures)
        for label, reseal in vault.RESEALERS.items():  # other apps' sealed rows (GoTo connections)
            resealed, failures = reseal()
            if resealed or failures:
                self.stdout.write(f"{label}: {resealed} re-encrypted, {len(failures)} failed.")
            report.failed.extend(failures)
        for message in report.failed:
            self.stderr.write(f"  {message}")
        if report.failed:
            raise CommandError(
                f"{len(report.failed)} credential(s) still need their old key (or a new secret): keep that key "
                "listed in INTEGRATION_CRYPTO_KEY until they are fixed."
            )
