"""/v1/webhooks and /v1/webhook-deliveries: endpoints, their deliveries and attempts, replay."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from core.api.docs import error_responses
from core.api.serializers import Input, Query
from integrations.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from integrations.webhooks import selectors, services
from integrations.webhooks.catalog import ALL, EVENT_TYPES
from tenants.api.idempotency import idempotent
from tenants.api.views import TenantScopedAPIView

WRITE_ADMIN = {"GET": "read", "POST": "admin", "PATCH": "admin", "DELETE": "admin"}
EVENT_CHOICES = [ALL, *EVENT_TYPES]
SECRET_HELP = "The signing secret (whsec_…): shown in this response only. Store it now."  # noqa: S105


class EndpointOutput(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=EVENT_CHOICES))

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id", "url", "description", "event_types", "enabled", "disabled_reason", "disabled_at",
            "secret_rotated_at", "previous_secret_expires_at", "failing_since", "last_success_at",
            "created_at", "updated_at",
        ]  # fmt: skip


class EndpointWithSecretOutput(EndpointOutput):
    secret = serializers.CharField(help_text=SECRET_HELP)

    class Meta(EndpointOutput.Meta):
        fields = [*EndpointOutput.Meta.fields, "secret"]


class EndpointInput(Input):
    url = serializers.URLField(max_length=2000, help_text="Receives a POST per event; https in production.")
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=EVENT_CHOICES), min_length=1, help_text="['*'] subscribes to all."
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    enabled = serializers.BooleanField(default=True)


class RotateInput(Input):
    overlap_hours = serializers.IntegerField(
        min_value=0, max_value=168, required=False, help_text="How long the old secret keeps signing (default 24)."
    )


class ReplayInput(Input):
    since = serializers.DateTimeField(help_text="Replay failed deliveries created at or after this time.")


class ReplayOutput(serializers.Serializer):
    replayed = serializers.IntegerField()


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "duration_ms", "outcome", "status_code", "error", "response_excerpt"]


class DeliveryOutput(serializers.ModelSerializer):
    endpoint_id = serializers.UUIDField()
    attempt_log = AttemptOutput(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint_id", "message_id", "event_type", "status", "attempts", "next_attempt_at",
            "last_attempt_at", "delivered_at", "last_status_code", "last_error", "replayed_at", "created_at",
            "body", "attempt_log",
        ]  # fmt: skip


class EventTypeOutput(serializers.Serializer):
    type = serializers.CharField()
    description = serializers.CharField()
    example = serializers.DictField(help_text="An example of the event's `data`.")


def _with_secret(issued) -> dict:
    return {**EndpointOutput(issued.endpoint).data, "secret": issued.secret}


class EndpointApiMixin:
    serializer_class = EndpointOutput
    required_scopes = WRITE_ADMIN

    def tenant_queryset(self):
        return selectors.webhook_endpoint_list(tenant=self.tenant)


class WebhookListCreateApi(EndpointApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhooks_list", responses={200: EndpointOutput(many=True), **error_responses(401, 403, 429)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(EndpointOutput(page, many=True).data)

    @extend_schema(
        operation_id="webhooks_create",
        request=EndpointInput,
        responses={201: EndpointWithSecretOutput, **error_responses(400, 401, 403, 415, 429)},
        description="Create an endpoint. The response carries its signing secret, once: not idempotent by "
        "design (a replayed response would have to store the secret).",
    )
    def post(self, request):
        data = EndpointInput(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.webhook_endpoint_create(tenant=self.tenant, actor=self.audit_actor(), **data.validated_data)
        return Response(_with_secret(issued), status=status.HTTP_201_CREATED)


class WebhookDetailApi(EndpointApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhooks_retrieve", responses={200: EndpointOutput, **error_responses(401, 403, 404, 429)}
    )
    def get(self, request, webhook_id):
        return Response(EndpointOutput(self.get_scoped(webhook_id)).data)

    @extend_schema(
        operation_id="webhooks_update",
        request=EndpointInput(partial=True),
        responses={200: EndpointOutput, **error_responses(400, 401, 403, 404, 415, 429)},
        description="Change url, event_types, description or enabled. Enabling clears the failure record; "
        "replay what the endpoint missed with POST /v1/webhooks/{id}/replay.",
    )
    def patch(self, request, webhook_id):
        endpoint = self.get_scoped(webhook_id)
        data = EndpointInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_update(endpoint=endpoint, actor=self.audit_actor(), **data.validated_data)
        return Response(EndpointOutput(endpoint).data)

    @extend_schema(operation_id="webhooks_delete", responses={204: None, **error_responses(401, 403, 404, 429)})
    def delete(self, request, webhook_id):
        services.webhook_endpoint_delete(endpoint=self.get_scoped(webhook_id), actor=self.audit_actor())
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotateSecretApi(EndpointApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhooks_rotate_secret",
        request=RotateInput,
        responses={200: EndpointWithSecretOutput, **error_responses(400, 401, 403, 404, 415, 429)},
        description="A new signing secret, shown once. Deliveries carry signatures with both the new and the "
        "old secret until previous_secret_expires_at.",
    )
    def post(self, request, webhook_id):
        endpoint = self.get_scoped(webhook_id)
        data = RotateInput(data=request.data)
        data.is_valid(raise_exception=True)
        issued = services.webhook_endpoint_rotate_secret(
            endpoint=endpoint, overlap_hours=data.validated_data.get("overlap_hours"), actor=self.audit_actor()
        )
        return Response(_with_secret(issued))


class WebhookReplayApi(EndpointApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhooks_replay",
        request=ReplayInput,
        responses={202: ReplayOutput, **error_responses(400, 401, 403, 404, 409, 415, 422, 429)},
        description="Send again every failed delivery of this endpoint since a time (same webhook-id and body, "
        "a new retry cycle). 409 while the endpoint is disabled.",
    )
    @idempotent
    def post(self, request, webhook_id):
        endpoint = self.get_scoped(webhook_id)
        data = ReplayInput(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.webhook_deliveries_replay_failed(
            endpoint=endpoint, since=data.validated_data["since"], actor=self.audit_actor()
        )
        return Response({"replayed": count}, status=status.HTTP_202_ACCEPTED)


class DeliveryQuery(Query):
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.choices, required=False)


class WebhookDeliveryListApi(EndpointApiMixin, TenantScopedAPIView):
    serializer_class = DeliveryOutput

    @extend_schema(
        operation_id="webhooks_deliveries",
        parameters=[DeliveryQuery],
        responses={200: DeliveryOutput(many=True), **error_responses(400, 401, 403, 404, 429)},
        description="The endpoint's deliveries, newest first, each with every attempt.",
    )
    def get(self, request, webhook_id):
        endpoint = self.get_scoped(webhook_id)
        query = DeliveryQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        deliveries = selectors.webhook_delivery_list(
            tenant=self.tenant, endpoint=endpoint, status=query.validated_data.get("status")
        )
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(DeliveryOutput(page, many=True).data)


class DeliveryApiMixin:
    serializer_class = DeliveryOutput
    required_scopes = WRITE_ADMIN

    def tenant_queryset(self):
        return selectors.webhook_delivery_list(tenant=self.tenant)


class WebhookDeliveryDetailApi(DeliveryApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhook_deliveries_retrieve",
        responses={200: DeliveryOutput, **error_responses(401, 403, 404, 429)},
    )
    def get(self, request, delivery_id):
        return Response(DeliveryOutput(self.get_scoped(delivery_id)).data)


class WebhookDeliveryReplayApi(DeliveryApiMixin, TenantScopedAPIView):
    @extend_schema(
        operation_id="webhook_deliveries_replay",
        request=None,
        responses={202: DeliveryOutput, **error_responses(400, 401, 403, 404, 409, 422, 429)},
        description="Send the delivery again (same webhook-id and body, a new retry cycle). 409 while it is "
        "still pending or its endpoint is disabled.",
    )
    @idempotent
    def post(self, request, delivery_id):
        delivery = services.webhook_delivery_replay(delivery=self.get_scoped(delivery_id), actor=self.audit_actor())
        return Response(DeliveryOutput(self.get_scoped(delivery.pk)).data, status=status.HTTP_202_ACCEPTED)


class WebhookEventTypesApi(TenantScopedAPIView):
    serializer_class = EventTypeOutput

    def tenant_queryset(self):
        return WebhookEndpoint.objects.none()  # the catalog is the same for every tenant

    @extend_schema(
        operation_id="webhook_event_types_list",
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: EventTypeOutput(many=True), **error_responses(401, 403, 429)},
        description="The catalog of event types an endpoint can subscribe to, with an example `data` each.",
    )
    def get(self, request):
        rows = [{"type": e.name, "description": e.description, "example": e.example} for e in EVENT_TYPES.values()]
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(EventTypeOutput(page, many=True).data)
