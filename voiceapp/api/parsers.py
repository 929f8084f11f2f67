"""The API's JSON parser: refuses text that no database column can store (NUL, lone surrogates)."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _storable(value) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate such as "\ud800"
            return False
        return True
    if isinstance(value, dict):
        return all(_storable(k) and _storable(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


class StrictJSONParser(JSONParser):
    """JSON whose strings PostgreSQL can store, so such input is a 400 and never a failed write."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if not _storable(data):
            raise ParseError("The JSON body contains a NUL character (\\u0000) or an unpaired surrogate.")
        return data
