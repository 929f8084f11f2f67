"""Limit/offset pagination: `count`, `next`, `previous`, `results` (default 20, at most 100).

A limit above 100 is served as 100 (the documented cap); a value that is not a number, or is out of
range (`offset=null`, `limit=0`, `offset=-1`), is a 400 naming the parameter, not silently the default.
"""

from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination


def _integer(request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or not raw.strip().lstrip("+").isdigit():
        raise serializers.ValidationError({name: [f"Must be a whole number of at least {minimum}."]})
    return value


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100

    def get_limit(self, request):
        limit = _integer(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request):
        return _integer(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        minimum = {self.limit_query_param: 1, self.offset_query_param: 0}
        for parameter in parameters:
            if parameter["name"] in minimum:
                parameter["schema"]["minimum"] = minimum[parameter["name"]]
        return parameters
