"""Import a tenant's backend services from a YAML file in the `integration:` format."""

import yaml
from django.core.management.base import BaseCommand, CommandError

from integrations.config import ConfigError
from integrations.services import backend_services_import
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Validate a YAML file in the `integration:` format and create or update the tenant's backend "
        "services from it. Every error is reported with its path; nothing is imported unless all are valid."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="The YAML file, e.g. integrations/examples/integration.yaml")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report, change nothing.")

    def handle(self, *args, path: str, tenant: str, dry_run: bool = False, **options):
        owner = Tenant.objects.alive().filter(slug=tenant).first()
        if owner is None:
            raise CommandError(f"No tenant with slug {tenant!r}.")
        document = self._load(path)
        try:
            result = backend_services_import(tenant=owner, document=document, dry_run=dry_run)
        except ConfigError as exc:
            for error_path, message in exc.errors:
                self.stderr.write(f"{path}: {error_path}: {message}")
            raise CommandError(f"{len(exc.errors)} error(s); nothing was imported.") from exc
        self._report(result, dry_run)

    def _load(self, path: str):
        try:
            with open(path, encoding="utf-8") as handle:
                return yaml.safe_load(handle)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        except yaml.YAMLError as exc:
            raise CommandError(f"{path} is not valid YAML: {exc}") from exc

    def _report(self, result: dict, dry_run: bool) -> None:
        prefix = "Would import" if dry_run else "Imported"
        self.stdout.write(
            self.style.SUCCESS(f"{prefix}: {len(result['created'])} new, {len(result['updated'])} updated.")
        )
        for name in result["created"] + result["updated"]:
            self.stdout.write(f"  {name}")
        for name, secrets in result["missing_secrets"].items():
            self.stdout.write(
                self.style.WARNING(f"  {name} refers to secrets not in the vault yet: {', '.join(secrets)}")
            )
