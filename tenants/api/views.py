"""The base of every tenant API view: authentication, tenant scoping, permissions, rate limits."""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.generics import GenericAPIView

from core.api.pagination import Pagination
from tenants.api import ratelimit
from tenants.api.authentication import ApiKeyAuthentication, TenantSessionAuthentication
from tenants.api.permissions import HasTenantScope


class TooManyConcurrentRequests(exceptions.Throttled):
    default_code = "too_many_concurrent_requests"


class TenantScopedAPIView(GenericAPIView):
    """Resolves `request.tenant` during authentication; subclasses read only through `tenant_queryset()`.

    Overriding get_queryset is refused when the class is defined, so no view can forget the tenant.
    """

    authentication_classes = [ApiKeyAuthentication, TenantSessionAuthentication]
    permission_classes = [HasTenantScope]
    pagination_class = Pagination
    required_scopes: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "get_queryset" in cls.__dict__:
            raise TypeError(f"{cls.__name__} must implement tenant_queryset(), not get_queryset().")

    @property
    def tenant(self):
        return self.request.tenant

    def tenant_queryset(self):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no tenant
            return self.get_serializer_class().Meta.model.objects.none()
        return self.tenant_queryset()

    def get_scoped(self, pk):
        """The tenant's object with this id, or a 404 exactly like a missing one."""
        obj = self.get_queryset().filter(pk=pk).first()
        if obj is None:
            raise Http404
        return obj

    def audit_actor(self) -> dict:
        return {**self.request.actor, "ip_address": self.request.META.get("REMOTE_ADDR")}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        per_minute, burst = ratelimit.tenant_limits(request.tenant)
        state = ratelimit.rate_limit_hit(request.tenant, per_minute)
        request._request.rate_limit = state
        if not state.allowed:
            raise exceptions.Throttled(
                wait=state.retry_after, detail="Rate limit exceeded: too many requests this minute."
            )
        if not ratelimit.inflight_enter(request.tenant, burst):
            raise TooManyConcurrentRequests(wait=1, detail="Too many concurrent requests for this tenant.")
        request._request.inflight_held = True

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        django_request = request._request
        if getattr(django_request, "inflight_held", False):
            django_request.inflight_held = False
            ratelimit.inflight_exit(django_request.tenant)
        state = getattr(django_request, "rate_limit", None)
        if state is not None:
            for name, value in state.headers().items():
                response[name] = value
        return response
