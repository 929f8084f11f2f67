"""Limit/offset pagination: `count`, `next`, `previous`, `results` (default 20, at most 100)."""

from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    default_limit = 20
    max_limit = 100
