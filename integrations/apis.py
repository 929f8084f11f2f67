"""/v1/credentials: the tenant's provider and backend secrets (admin permission)."""

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api.docs import error_responses
from core.api.serializers import Input
from core.errors import ApplicationError, Conflict
from integrations import selectors, services
from integrations.models import BackendService, ProviderCredential
from tenants.api.idempotency import idempotent
from tenants.api.views import TenantScopedAPIView

# --- credentials

CREDENTIALS_ADMIN_ONLY = {"GET": "admin", "POST": "admin", "PATCH": "admin", "DELETE": "admin"}
FIELDS_HELP = (
    "The provider's fields, all strings: anthropic and deepgram {api_key}; gotoconnect {client_id, "
    "client_secret}; livekit {url, api_key, api_secret}; http {value, check_url?, header?} where header is a "
    "name (X-API-Key) or 'Name: text with <value>' (default 'Authorization: Bearer <value>'). Write-only."
)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}, "writeOnly": True})
class SecretField(serializers.JSONField):
    """A JSON object validated by the vault, which reports errors per field (`secret.api_key`)."""


class CredentialOutput(serializers.ModelSerializer):
    masked = serializers.CharField(help_text="The secret's last four characters at most, e.g. ••••abcd.")

    class Meta:
        model = ProviderCredential
        fields = [
            "id", "name", "provider", "masked", "verification", "verification_message", "verified_at", "created_at",
        ]  # fmt: skip


class CredentialInput(Input):
    name = serializers.CharField(
        max_length=100, help_text="How backend services refer to it: ${NAME}. Letters, digits and _."
    )
    provider = serializers.ChoiceField(choices=ProviderCredential.Provider.choices)
    secret = SecretField(help_text=FIELDS_HELP)


class CredentialSecretInput(Input):
    secret = SecretField(help_text=FIELDS_HELP)


class CredentialListCreateApi(TenantScopedAPIView):
    serializer_class = CredentialOutput
    required_scopes = CREDENTIALS_ADMIN_ONLY

    def tenant_queryset(self):
        return selectors.credential_list(tenant=self.tenant)

    @extend_schema(
        operation_id="credentials_list",
        responses={200: CredentialOutput(many=True), **error_responses(401, 403, 429)},
        description="The tenant's credentials, masked: no response ever carries a secret.",
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(CredentialOutput(page, many=True).data)

    @extend_schema(
        operation_id="credentials_create",
        request=CredentialInput,
        responses={201: CredentialOutput, **error_responses(400, 401, 403, 415, 429)},
        description="Verifies the secret with its provider first: if the provider refuses it, the answer is in "
        "a 400 `credential_verification_failed` and nothing is stored. Not idempotent by design: replaying "
        "would mean storing the request, secret included.",
    )
    def post(self, request):
        data = CredentialInput(data=request.data)
        data.is_valid(raise_exception=True)
        credential = services.credential_create(tenant=self.tenant, actor=self.audit_actor(), **data.validated_data)
        return Response(CredentialOutput(credential).data, status=status.HTTP_201_CREATED)


class CredentialApiMixin:
    serializer_class = CredentialOutput
    required_scopes = CREDENTIALS_ADMIN_ONLY

    def tenant_queryset(self):
        return selectors.credential_list(tenant=self.tenant)


class CredentialDetailApi(CredentialApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="credentials_retrieve",
        responses={200: CredentialOutput, **error_responses(401, 403, 404, 429)},
        description="One credential, masked.",
    )
    def get(self, request, credential_id):
        return Response(CredentialOutput(self.get_scoped(credential_id)).data)

    @extend_schema(
        operation_id="credentials_update_secret",
        request=CredentialSecretInput,
        responses={200: CredentialOutput, **error_responses(400, 401, 403, 404, 415, 429)},
        description="Replace the secret (rotation). It is verified like a new one; if the provider refuses it, "
        "the stored secret is kept.",
    )
    def patch(self, request, credential_id):
        credential = self.get_scoped(credential_id)  # another tenant's id is a 404 before anything else
        data = CredentialSecretInput(data=request.data)
        data.is_valid(raise_exception=True)
        credential = services.credential_update_secret(
            credential=credential, secret=data.validated_data["secret"], actor=self.audit_actor()
        )
        return Response(CredentialOutput(credential).data)

    @extend_schema(
        operation_id="credentials_delete",
        responses={204: None, **error_responses(401, 403, 404, 429)},
        description="Delete the credential; backend services that refer to ${NAME} fail from then on.",
    )
    def delete(self, request, credential_id):
        services.credential_delete(credential=self.get_scoped(credential_id), actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CredentialVerifyApi(CredentialApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="credentials_verify",
        request=None,
        responses={200: CredentialOutput, **error_responses(401, 403, 404, 409, 429)},
        description="Check the stored secret with its provider again; the answer is in `verification` and "
        "`verification_message`. 409 when the secret cannot be decrypted (its key is no longer configured).",
    )
    def post(self, request, credential_id):
        credential = services.credential_verify(credential=self.get_scoped(credential_id), actor=self.audit_actor())
        return Response(CredentialOutput(credential).data)


# --- backend services ---------------------------------------------------------------------------


class BackendServiceOutput(serializers.ModelSerializer):
    class Meta:
        model = BackendService
        fields = [
            "id", "name", "type", "url", "method", "headers", "timeout_seconds", "retry", "rate_limit",
            "circuit_breaker", "tls", "auth", "logging", "enabled", "created_at", "updated_at",
        ]  # fmt: skip


class BackendServiceInput(Input):
    name = serializers.SlugField(max_length=100)
    url = serializers.URLField(max_length=2000)
    method = serializers.ChoiceField(choices=BackendService.Method.choices, default="POST")
    headers = serializers.DictField(child=serializers.CharField(), required=False, default=dict)
    timeout_seconds = serializers.FloatField(min_value=0.001, max_value=300, default=5.0)
    retry = serializers.DictField(required=False, default=dict)
    rate_limit = serializers.DictField(required=False, default=dict)
    circuit_breaker = serializers.DictField(required=False, default=dict)
    tls = serializers.DictField(required=False, default=dict)
    auth = serializers.DictField(required=False, default=dict)
    logging = serializers.DictField(required=False, default=dict)
    enabled = serializers.BooleanField(default=True)


class BackendServiceListCreateApi(TenantScopedAPIView):
    serializer_class = BackendServiceOutput
    required_scopes = {"GET": "read", "POST": "admin"}

    def tenant_queryset(self):
        return selectors.backend_service_list(tenant=self.tenant)

    @extend_schema(
        operation_id="backend_services_list",
        responses={200: BackendServiceOutput(many=True), **error_responses(401, 403, 429)},
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(BackendServiceOutput(page, many=True).data)

    @extend_schema(
        operation_id="backend_services_create",
        request=BackendServiceInput,
        responses={201: BackendServiceOutput, **error_responses(400, 401, 403, 409, 415, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = BackendServiceInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        name = values.pop("name")
        if self.get_queryset().filter(name=name).exists():
            raise Conflict(
                "A backend service with this name already exists.",
                code="backend_service_exists",
                fields={"name": ["Already exists."]},
            )
        service, _created = services.backend_service_save(
            tenant=self.tenant, name=name, actor=self.audit_actor(), **values
        )
        return Response(BackendServiceOutput(service).data, status=status.HTTP_201_CREATED)


class BackendServiceDetailApi(TenantScopedAPIView):
    serializer_class = BackendServiceOutput
    required_scopes = {"GET": "read", "PATCH": "admin", "DELETE": "admin"}

    def tenant_queryset(self):
        return selectors.backend_service_list(tenant=self.tenant)

    @extend_schema(
        operation_id="backend_services_retrieve",
        responses={200: BackendServiceOutput, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, service_id):
        return Response(BackendServiceOutput(self.get_scoped(service_id)).data)

    @extend_schema(
        operation_id="backend_services_update",
        request=BackendServiceInput(partial=True),
        responses={200: BackendServiceOutput, **error_responses(400, 401, 403, 404, 415, 429)},
    )
    def patch(self, request, service_id):
        service = self.get_scoped(service_id)
        data = BackendServiceInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        if values.pop("name", service.name) != service.name:
            raise ApplicationError(
                "A backend service cannot be renamed; create a new one.",
                code="rename_not_allowed",
                fields={"name": ["Cannot be changed."]},
            )
        service, _created = services.backend_service_save(
            tenant=self.tenant, name=service.name, actor=self.audit_actor(), **values
        )
        return Response(BackendServiceOutput(service).data)

    @extend_schema(operation_id="backend_services_delete", responses={204: None, **error_responses(401, 403, 404, 429)})
    def delete(self, request, service_id):
        services.backend_service_delete(service=self.get_scoped(service_id), actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
