"""/v1/calls: list, start outbound, details with transcript, recording, end, transfer."""

from django.http import Http404
from django.urls import reverse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from agents.selectors import agent_list
from calls import carriers, selectors, services
from calls.filters import CallFilter
from calls.models import Call, CallEvent, ToolCall, TranscriptTurn
from calls.recordings import RecordingGone, recording_response
from core.api.docs import ErrorBody, error_responses
from core.api.exceptions import error_body
from core.api.serializers import E164Field, Input, resolve_in
from core.errors import NotFound
from core.http_range import RangeNotSatisfiable
from core.logging import call_id_var
from tenants.api.idempotency import idempotent
from tenants.api.views import TenantScopedAPIView

CALL_FIELDS = [*selectors.CALL_FIELDS, "recording_url"]


def recording_url(request, call_id) -> str:
    """The absolute URL of the call's recording download (a relative one without a request)."""
    path = reverse("v1:call-recording", args=[call_id])
    return request.build_absolute_uri(path) if request is not None else path


class CallOutput(serializers.ModelSerializer):
    agent_id = serializers.UUIDField()
    phone_number_id = serializers.UUIDField(allow_null=True)
    recording_url = serializers.SerializerMethodField(
        help_text="GET it with your API key (HTTP Range supported) to download the audio; null when the call has "
        "no recording."
    )

    class Meta:
        model = Call
        fields = CALL_FIELDS

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_recording_url(self, call: Call) -> str | None:
        has_recording = getattr(call, "has_recording", None)  # annotated by the API's selectors
        if has_recording is None:
            has_recording = selectors.call_recording(tenant=call.tenant, call_id=call.pk) is not None
        return recording_url(self.context.get("request"), call.pk) if has_recording else None


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
        return selectors.call_list_with_recording(tenant=self.tenant)

    @extend_schema(
        operation_id="calls_list", responses={200: CallOutput(many=True), **error_responses(400, 401, 403, 429)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CallOutput(page, many=True, context={"request": request}).data)

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
            carriers.tenant_numbers(tenant=self.tenant),
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
        # The selector's has_recording sits where the serializer puts recording_url: same keys, same order.
        data = {("recording_url" if key == "has_recording" else key): value for key, value in data.items()}
        data["recording_url"] = recording_url(request, data["id"]) if data["recording_url"] else None
        return Response(data)


class AnyAcceptNegotiation(BaseContentNegotiation):
    """The audio answers whatever `Accept` a player sends (`audio/*`...); the errors stay JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


AUDIO = OpenApiResponse(OpenApiTypes.BINARY, description="The audio (audio/wav for calls recorded here).")
RANGE_HEADER = OpenApiParameter(
    "Range",
    location=OpenApiParameter.HEADER,
    required=False,
    description="One byte range, e.g. `bytes=0-1023`, `bytes=1024-` or `bytes=-4096`: answered with 206. "
    "Several ranges or a malformed value get the whole file (200).",
)


class CallRecordingApi(TenantScopedAPIView):
    serializer_class = CallOutput
    content_negotiation_class = AnyAcceptNegotiation

    def tenant_queryset(self):
        return selectors.call_list(tenant=self.tenant)

    @extend_schema(
        operation_id="calls_recording",
        parameters=[RANGE_HEADER],
        responses={
            (200, "audio/*"): AUDIO,
            (206, "audio/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The byte range asked for."),
            416: OpenApiResponse(ErrorBody, description="The range starts past the end of the file."),
            **error_responses(401, 403, 404, 429),
        },
        description="Download the call's recording (both sides mixed). Supports HTTP Range, so players can seek. "
        "404 `recording_missing` when the call has no recording (yet, or no longer: retention).",
    )
    def get(self, request, call_id):
        call = self.get_scoped(call_id)
        call_id_var.set(str(call.pk))
        recording = selectors.call_recording(tenant=self.tenant, call_id=call.pk)
        try:
            if recording is None:
                raise RecordingGone
            return recording_response(request, recording)
        except RecordingGone:
            raise NotFound("This call has no recording.", code="recording_missing") from None
        except RangeNotSatisfiable as exc:
            body = error_body(type="invalid_request_error", code="range_not_satisfiable", message=str(exc))
            return Response(body, status=416, headers=exc.headers)


class CallEndApi(TenantScopedAPIView):
    serializer_class = CallOutput

    def tenant_queryset(self):
        return selectors.call_list_with_recording(tenant=self.tenant)

    @extend_schema(
        operation_id="calls_end",
        request=None,
        responses={202: CallOutput, **error_responses(400, 401, 403, 404, 409, 422, 429)},
        description='Hang up a call that has not ended (a supervisor\'s "end call"): the bridge running it is '
        "asked to hang up and the call ends shortly after; follow it with GET /v1/calls/{id}. 409 "
        "`call_not_active` when it has already ended.",
    )
    @idempotent
    def post(self, request, call_id):
        call = self.get_scoped(call_id)
        call_id_var.set(str(call.pk))
        call = services.call_end_request(call=call, actor=self.audit_actor())
        return Response(CallOutput(call, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)


class TransferInput(Input):
    type = serializers.ChoiceField(
        choices=services.TRANSFER_TYPES,
        help_text="blind: hand over at once; warm: hold the caller and brief the target first; conference: add the target (a supervisor) to the call with the agent.",
    )
    target = serializers.CharField(
        max_length=100, help_text="E.164, ext:NNN, or the name of one of the agent's transfer targets."
    )
    # DRF's serializer metaclass takes declared fields off the class, so this never shadows Field.context;
    # the stubs can only see a class attribute replacing that property.
    context = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, default="", max_length=2000, help_text="What the target should know."
    )


class CallTransferApi(TenantScopedAPIView):
    serializer_class = CallOutput

    def tenant_queryset(self):
        return selectors.call_list_with_recording(tenant=self.tenant).select_related("agent", "phone_number")

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
        return Response(CallOutput(call, context={"request": request}).data, status=status.HTTP_202_ACCEPTED)
