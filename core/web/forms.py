"""What every dashboard form shares."""

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.errors import ApplicationError


def add_service_error(form: forms.Form, exc: ApplicationError | ValidationError, aliases: dict | None = None) -> None:
    """Show a service's refusal on the form: next to the fields it names (`aliases` maps a service's field
    name to the form's), otherwise above the form."""
    if isinstance(exc, ApplicationError):
        fields, message = exc.fields or {}, exc.message
    else:
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = " ".join(exc.messages)
    aliases = aliases or {}
    placed = False
    for name, problems in fields.items():
        target = aliases.get(name, name)
        if target == NON_FIELD_ERRORS:
            form.add_error(None, problems)
            placed = True
        elif target in form.fields and not form.fields[target].disabled:
            form.add_error(target, problems)
            placed = True
    if not placed:
        form.add_error(None, message)


class ServiceErrorsMixin:
    """`form.add_service_error(exc)`: a service's refusal on the fields it names."""

    service_error_aliases: dict = {}

    def add_service_error(self, exc: ApplicationError) -> None:
        add_service_error(self, exc, self.service_error_aliases)
