"""/v1/numbers."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from agents.selectors import agent_list
from core.api.docs import error_responses
from core.api.serializers import E164Field, Input, Query, resolve_in
from telephony import selectors, services
from telephony.models import PhoneNumber
from tenants.api.idempotency import idempotent
from tenants.api.views import TenantScopedAPIView


class NumberOutput(serializers.ModelSerializer):
    agent_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = PhoneNumber
        fields = [
            "id",
            "e164",
            "friendly_name",
            "agent_id",
            "provider",
            "external_id",
            "status",
            "created_at",
            "updated_at",
        ]


class NumberCreateInput(Input):
    e164 = E164Field(help_text="E.164, e.g. +15551234567.")
    friendly_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    agent_id = serializers.UUIDField(required=False, allow_null=True, default=None)
    provider = serializers.ChoiceField(choices=PhoneNumber.Provider.choices, default=PhoneNumber.Provider.GOTOCONNECT)
    external_id = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class NumberUpdateInput(Input):
    friendly_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    agent_id = serializers.UUIDField(
        required=False, allow_null=True, help_text="The agent that answers; null unassigns."
    )
    status = serializers.ChoiceField(choices=PhoneNumber.Status.choices, required=False)


class NumberFilters(Query):
    status = serializers.ChoiceField(choices=PhoneNumber.Status.choices, required=False)
    agent_id = serializers.UUIDField(required=False)


def _with_agent(view, data: dict) -> dict:
    fields = dict(data)
    if "agent_id" in fields:
        fields["agent"] = resolve_in(
            agent_list(tenant=view.tenant), fields.pop("agent_id"), field="agent_id", label="agent"
        )
    return fields


class NumberListCreateApi(TenantScopedAPIView):
    serializer_class = NumberOutput

    def tenant_queryset(self):
        return selectors.phone_number_list(tenant=self.tenant)

    @extend_schema(
        operation_id="numbers_list",
        parameters=[NumberFilters],
        responses={200: NumberOutput(many=True), **error_responses(400, 401, 403, 429)},
    )
    def get(self, request):
        filters = NumberFilters(data=request.query_params)
        filters.is_valid(raise_exception=True)
        numbers = self.get_queryset()
        if "status" in filters.validated_data:
            numbers = numbers.filter(status=filters.validated_data["status"])
        if "agent_id" in filters.validated_data:
            numbers = numbers.filter(agent_id=filters.validated_data["agent_id"])
        page = self.paginate_queryset(numbers)
        return self.get_paginated_response(NumberOutput(page, many=True).data)

    @extend_schema(
        operation_id="numbers_create",
        request=NumberCreateInput,
        responses={201: NumberOutput, **error_responses(400, 401, 403, 409, 415, 422, 429)},
    )
    @idempotent
    def post(self, request):
        data = NumberCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        number = services.phone_number_create(
            tenant=self.tenant, actor=self.audit_actor(), **_with_agent(self, data.validated_data)
        )
        return Response(NumberOutput(number).data, status=status.HTTP_201_CREATED)


class NumberDetailApi(TenantScopedAPIView):
    serializer_class = NumberOutput

    def tenant_queryset(self):
        return selectors.phone_number_list(tenant=self.tenant)

    @extend_schema(
        operation_id="numbers_retrieve", responses={200: NumberOutput, **error_responses(401, 403, 404, 429)}
    )
    def get(self, request, number_id):
        return Response(NumberOutput(self.get_scoped(number_id)).data)

    @extend_schema(
        operation_id="numbers_update",
        request=NumberUpdateInput,
        responses={200: NumberOutput, **error_responses(400, 401, 403, 404, 415, 429)},
    )
    def patch(self, request, number_id):
        number = self.get_scoped(number_id)
        data = NumberUpdateInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        number = services.phone_number_update(
            number=number, actor=self.audit_actor(), **_with_agent(self, data.validated_data)
        )
        return Response(NumberOutput(number).data)


class TwilioImportInput(Input):
    point_webhooks = serializers.BooleanField(
        default=False, help_text="Also set each number's voice webhook and status callback at Twilio to this platform."
    )


class TwilioImportOutput(serializers.Serializer):
    imported = serializers.ListField(child=serializers.CharField())
    skipped = serializers.DictField(child=serializers.CharField())
    pointed = serializers.ListField(child=serializers.CharField())


class TwilioNumbersImportApi(TenantScopedAPIView):
    """Import the voice numbers of the tenant's Twilio account (admin)."""

    serializer_class = NumberOutput
    required_scopes = {"POST": "admin"}

    def tenant_queryset(self):
        return selectors.phone_number_list(tenant=self.tenant)

    @extend_schema(
        operation_id="numbers_import_twilio",
        request=TwilioImportInput,
        responses={200: TwilioImportOutput, **error_responses(400, 401, 403, 409, 415, 429)},
    )
    def post(self, request):
        from telephony.carriers.twilio.numbers import twilio_numbers_import

        data = TwilioImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        report = twilio_numbers_import(tenant=self.tenant, actor=self.audit_actor(), **data.validated_data)
        return Response(TwilioImportOutput(report).data)
