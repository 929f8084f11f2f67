"""/v1/calls: list, start outbound, details with transcript, transfer."""

from django.http import Http404
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response

from agents.selectors import agent_list
from calls import selectors, services
from calls.filters import CallFilter
from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from telephony.selectors import phone_number_list
from voiceapp.api.docs import error_responses
from voiceapp.api.idempotency import idempotent
from voiceapp.api.serializers import E164Field, Input, resolve_in
from voiceapp.api.views import TenantScopedAPIView
from voiceapp.logging import call_id_var

CALL_FIELDS = [
    "id", "agent_id", "phone_number_id", "direction", "status", "from_number", "to_number", "external_call_id",
    "room_name", "started_at", "answered_at", "ended_at", "duration_seconds", "end_reason", "metadata", "created_at",
]  # fmt: skip


class CallOutput(serializers.ModelSerializer):
    agent_id = serializers.UUIDField()
    phone_number_id = serializers.UUIDField(allow_null=True)

    class Meta:
        model = Call
        fields = CALL_FIELDS


class TurnOutput(serializers.ModelSerializer):
    class Meta:
        model = TranscriptTurn
        fields = ["turn_number", "speaker", "text", "confidence", "started_at", "ended_at", "interrupted", "metadata"]


class EventOutput(serializers.ModelSerializer):
    class Meta:
        model = CallEvent
        fields = ["sequence", "event_type", "payload", "occurred_at"]


class ToolCallOutput(serializers.ModelSerializer):
    class Meta:
        model = ToolCall
        fields = [
            "id",
            "tool_name",
            "arguments",
            "result",
            "status",
            "error",
            "http_status",
            "started_at",
            "ended_at",
            "duration_ms",
        ]


class CallDetailOutput(CallOutput):
    transcript = TurnOutput(source="turns", many=True)
    events = EventOutput(many=True)
    tool_calls = ToolCallOutput(many=True)

    class Meta(CallOutput.Meta):
        fields = [*CALL_FIELDS, "transcript", "events", "tool_calls"]


class CallStartInput(Input):
    agent_id = serializers.UUIDField()
    to = E164Field(help_text="The number to call, E.164.")
    from_number_id = serializers.UUIDField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Caller id: one of your numbers. Default: the agent's number.",
    )
    metadata = serializers.DictField(
        required=False, default=dict, help_text="Caller context passed to the agent (e.g. customer_name)."
    )


CallStarted = inline_serializer("CallStarted", {"call_id": serializers.UUIDField(), "status": serializers.CharField()})


class CallListCreateApi(TenantScopedAPIView):
    serializer_class = CallOutput
    filter_backends = [DjangoFilterBackend]
    filterset_class = CallFilter

    def tenant_queryset(self):
        return selectors.call_list(tenant=self.tenant)

    @extend_schema(
        operation_id="calls_list", responses={200: CallOutput(many=True), **error_responses(400, 401, 403, 429)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CallOutput(page, many=True).data)

    @extend_schema(
        operation_id="calls_create",
        request=CallStartInput,
        responses={202: CallStarted, **error_responses(400, 401, 402, 403, 409, 415, 422, 429)},
        description="Start an outbound call. The call is created and dialled asynchronously; follow it with GET /v1/calls/{id}.",
    )
    @idempotent
    def post(self, request):
        data = CallStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        agent = resolve_in(agent_list(tenant=self.tenant), values["agent_id"], field="agent_id", label="agent")
        number = resolve_in(
            phone_number_list(tenant=self.tenant),
            values["from_number_id"],
            field="from_number_id",
            label="phone number",
        )
        call = services.call_start_outbound(
            tenant=self.tenant,
            agent=agent,
            to_number=values["to"],
            from_number=number,
            metadata=values["metadata"],
            actor=self.audit_actor(),
        )
        return Response({"call_id": str(call.pk), "status": "initiating"}, status=status.HTTP_202_ACCEPTED)


class CallDetailApi(TenantScopedAPIView):
    serializer_class = CallDetailOutput

    def tenant_queryset(self):
        return selectors.call_list(tenant=self.tenant)

    @extend_schema(
        operation_id="calls_retrieve", responses={200: CallDetailOutput, **error_responses(401, 403, 404, 429)}
    )
    def get(self, request, call_id):
        data = selectors.call_detail_data(tenant=self.tenant, call_id=call_id)
        if data is None:
            raise Http404
        call_id_var.set(data["id"])
        return Response(data)


class TransferInput(Input):
    type = serializers.ChoiceField(
        choices=services.TRANSFER_TYPES,
        help_text="blind: hand over at once; warm: hold the caller and brief the target first; conference: add the target (a supervisor) to the call with the agent.",
    )
    target = serializers.CharField(
        max_length=100, help_text="E.164, ext:NNN, or the name of one of the agent's transfer targets."
    )
    context = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000, help_text="What the target should know."
    )


class CallTransferApi(TenantScopedAPIView):
    serializer_class = CallOutput

    def tenant_queryset(self):
        return selectors.call_list(tenant=self.tenant).select_related("agent", "phone_number")

    @extend_schema(
        operation_id="calls_transfer",
        request=TransferInput,
        responses={202: CallOutput, **error_responses(400, 401, 403, 404, 409, 415, 422, 429)},
    )
    @idempotent
    def post(self, request, call_id):
        call = self.get_scoped(call_id)
        call_id_var.set(str(call.pk))
        data = TransferInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        call = services.call_transfer_request(
            call=call,
            transfer_type=values["type"],
            target=values["target"],
            context=values["context"],
            actor=self.audit_actor(),
        )
        return Response(CallOutput(call).data, status=status.HTTP_202_ACCEPTED)
