"""OpenAPI pieces: the error body, the error responses each operation declares, auth schemes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorBody = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "type": serializers.CharField(
                    help_text="invalid_request_error, authentication_error, permission_error, rate_limit_error, idempotency_error or api_error."
                ),
                "code": serializers.CharField(
                    help_text="Stable machine-readable code, e.g. validation_error, api_key_revoked."
                ),
                "message": serializers.CharField(help_text="Human-readable explanation."),
                "fields": serializers.DictField(
                    child=serializers.ListField(child=serializers.CharField()),
                    help_text="Per-field messages for validation errors; empty otherwise.",
                ),
            },
        )
    },
)

DESCRIPTIONS = {
    400: "Invalid request: malformed JSON or fields that fail validation.",
    401: "Missing, malformed, expired or revoked API key, or a suspended tenant.",
    402: "The tenant has no plan and no remaining credit.",
    403: "The key's scopes or the user's role do not allow this.",
    404: "No such object for this tenant.",
    409: "Conflicts with the current state (e.g. a call that cannot be transferred now).",
    415: "The body is not JSON.",
    422: "Idempotency-Key reused with a different request.",
    429: "Rate limit or concurrent-request limit reached; see Retry-After.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(response=ErrorBody, description=DESCRIPTIONS[code]) for code in codes}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "A tenant API key: vk_live_…"}


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.authentication.TenantSessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "Dashboard session (send X-CSRFToken on writes).",
        }


def strict_request_bodies(result, generator, request, public):
    """drf-spectacular post-processing: say in the schema what the API enforces on request bodies.

    - a request body's object refuses properties it does not list (`additionalProperties: false`), as
      `core.api.serializers.Input` does (request components end in "Request": COMPONENT_SPLIT_REQUEST);
    - every operation that takes a body may answer 413 when the body is over DATA_UPLOAD_MAX_MEMORY_SIZE;
    - every operation with query parameters may answer 400 for an invalid value (`?limit=0`, `?status=`).
    """
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    too_large = {
        "description": "The request body is larger than the API accepts.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    invalid = {
        "description": DESCRIPTIONS[400],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            if "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", too_large)
            if any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
                operation.setdefault("responses", {}).setdefault("400", invalid)
    return result
