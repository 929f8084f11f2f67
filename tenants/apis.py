"""/v1/api-keys: the tenant's API keys (admin permission)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api.docs import error_responses
from core.api.serializers import Input
from tenants import selectors, services
from tenants.api.views import TenantScopedAPIView
from tenants.models import ApiKey

ADMIN_ONLY = {"GET": "admin", "POST": "admin", "DELETE": "admin"}


class ApiKeyOutput(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "status", "created_at", "last_used_at", "expires_at", "revoked_at"]

    def get_status(self, key: ApiKey) -> str:
        if key.revoked_at is not None:
            return "revoked"
        return "active" if key.is_usable else "expired"


class ApiKeyCreatedOutput(ApiKeyOutput):
    secret = serializers.CharField(help_text="The full key. Shown only in this response: store it now.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "secret"]


class ApiKeyInput(Input):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKey.Scope.choices), min_length=1, default=["read", "write"]
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeyListCreateApi(TenantScopedAPIView):
    serializer_class = ApiKeyOutput
    required_scopes = ADMIN_ONLY

    def tenant_queryset(self):
        return selectors.api_key_list(tenant=self.tenant)

    @extend_schema(
        operation_id="api_keys_list", responses={200: ApiKeyOutput(many=True), **error_responses(401, 403, 429)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(ApiKeyOutput(page, many=True).data)

    @extend_schema(
        operation_id="api_keys_create",
        request=ApiKeyInput,
        responses={201: ApiKeyCreatedOutput, **error_responses(400, 401, 403, 415, 429)},
        description="Not idempotent by design: replaying would mean storing the secret. Revoke a key you did not receive.",
    )
    def post(self, request):
        data = ApiKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        actor = self.audit_actor()
        issued = services.api_key_create(
            tenant=self.tenant, created_by=actor["actor_user"], actor=actor, **data.validated_data
        )
        body = ApiKeyOutput(issued.api_key).data | {"secret": issued.secret}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyDetailApi(TenantScopedAPIView):
    serializer_class = ApiKeyOutput
    required_scopes = ADMIN_ONLY

    def tenant_queryset(self):
        return selectors.api_key_list(tenant=self.tenant)

    @extend_schema(operation_id="api_keys_revoke", responses={204: None, **error_responses(401, 403, 404, 429)})
    def delete(self, request, key_id):
        api_key = self.get_scoped(key_id)
        services.api_key_revoke(api_key=api_key, actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)
