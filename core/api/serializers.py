"""Small serializer helpers shared by the apps' APIs."""

from collections.abc import Mapping

from rest_framework import serializers

from core.validators import validate_e164


class E164Field(serializers.CharField):
    """A phone number in E.164 format (+15551234567)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(**kwargs)
        self.validators.append(validate_e164)


def resolve_in(queryset, value, *, field: str, label: str):
    """The object with pk `value` in the (tenant-scoped) queryset, or a field error as if it did not exist."""
    if value is None:
        return None
    obj = queryset.filter(pk=value).first()
    if obj is None:
        raise serializers.ValidationError({field: [f"Unknown {label}."]})
    return obj


class Input(serializers.Serializer):
    """The base of every request body: a field the operation does not know is a 400 naming it, never silently
    dropped (`{"first_message": "hi"}` would otherwise create an agent without the greeting that was meant)."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            known = sorted(name for name, field in self.fields.items() if not field.read_only)
            unknown = sorted(str(name) for name in data if name not in known)
            if unknown:
                accepted = ", ".join(known)
                raise serializers.ValidationError(
                    {name: [f"Unknown field. This operation accepts: {accepted}."] for name in unknown}
                )
        return super().to_internal_value(data)


class Query(serializers.Serializer):
    """The base of query-parameter serializers: a parameter sent with no value (`?status=`) is a 400 naming it.

    DRF reads a query string like a form, where a blank value of an optional field counts as "not sent",
    so `?status=` would list everything; unknown parameters stay allowed (cache busters, tracing)."""

    def to_internal_value(self, data):
        blank = [
            name
            for name, field in self.fields.items()
            if name in data and not getattr(field, "allow_blank", False) and str(data.get(name, "")).strip() == ""
        ]
        if blank:
            raise serializers.ValidationError({name: ["Give a value, or leave the parameter out."] for name in blank})
        return super().to_internal_value(data)
