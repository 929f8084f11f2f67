"""Small serializer helpers shared by the apps' APIs."""

from rest_framework import serializers

from voiceapp.validators import validate_e164


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
