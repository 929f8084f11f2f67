"""What OPTIONS answers: the allowed methods (the Allow header) and where the schema is.

DRF's SimpleMetadata describes the view's `serializer_class` for PUT and POST, fetching the object
with `get_object()` (an AssertionError on our routes, which name their ids `agent_id`, `call_id` ...),
and that serializer is the output, not what a write accepts. The OpenAPI schema is the one truthful
description of each operation's input, so OPTIONS points to it instead of guessing.
"""

from django.urls import reverse
from rest_framework.metadata import BaseMetadata


class SchemaPointerMetadata(BaseMetadata):
    def determine_metadata(self, request, view):
        return {
            "name": view.get_view_name(),
            "methods": sorted(view.allowed_methods),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
            "schema": request.build_absolute_uri(reverse("v1:schema")),
        }
