"""Validators shared across apps."""

from django.core.validators import RegexValidator

# E.164: a plus, a non-zero country digit, at most 15 digits in all.
E164_PATTERN = r"^\+[1-9][0-9]{1,14}\Z"  # \Z, not $: "$" also matches before a trailing newline

validate_e164 = RegexValidator(
    E164_PATTERN,
    message="Enter a phone number in E.164 format: + then country code and number, digits only (e.g. +15551234567).",
    code="invalid_e164",
)
