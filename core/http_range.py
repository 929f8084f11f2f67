"""Files from Django's storage served with HTTP Range (RFC 9110 §14), so audio players can seek.

One `bytes` range is served as 206 Partial Content; a range that starts past the end is a 416 with
`Content-Range: bytes */<size>`; anything else (no header, another unit, several ranges, a malformed
one, an `If-Range` that does not match the current ETag) gets the whole file, as the RFC allows. Django
itself answers every request with the whole file, and Django's FileResponse is kept for the streaming.
"""

import hashlib
import re

from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, HttpResponse

# bytes=<first>-[<last>] or bytes=-<suffix length>; the unit is case-insensitive, one range only.
RANGE = re.compile(r"bytes=(?P<first>[0-9]*)-(?P<last>[0-9]*)", re.IGNORECASE)
# Positions beyond any file: bounded so a 5,000-digit number is not parsed (Python refuses those).
MAX_DIGITS = 18


class RangeNotSatisfiable(Exception):
    """The Range asks for bytes the file does not have (416); `headers` says how long the file is."""

    def __init__(self, size: int):
        super().__init__(f"The requested range is not satisfiable: the file has {size} bytes.")
        self.size = size
        self.headers = {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"}


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions `header` asks of a `size`-byte file, or None for all of it.

    Raises RangeNotSatisfiable for a valid range that selects no byte (`bytes=<size>-`, `bytes=-0`).
    """
    match = RANGE.fullmatch((header or "").strip())
    if match is None:
        return None  # no header, another unit, several ranges or a malformed one: the whole file
    first, last = match["first"], match["last"]
    if not first:
        if not last:
            return None  # "bytes=-" is not a range
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - suffix, 0), size - 1
    start = _position(first)
    end = _position(last) if last else None
    if end is not None and end < start:
        return None  # an invalid range-spec is ignored, like a malformed header
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, size - 1 if end is None else min(end, size - 1)


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= MAX_DIGITS else 10**MAX_DIGITS


def storage_file_response(
    request, *, name: str, content_type: str, version: str = "", storage: Storage | None = None
) -> FileResponse:
    """The stored file `name` for `request`: 200 with the whole file, or 206 with the one range it asks for.

    `version` changes whenever the content behind `name` may have (e.g. the row's updated_at): it goes into
    the ETag that `If-Range` is checked against. Raises FileNotFoundError when the storage has no such file
    and RangeNotSatisfiable (before opening it) for a range past its end.
    """
    storage = storage or default_storage
    size = storage.size(name)
    etag = '"' + hashlib.sha256(f"{name}\0{size}\0{version}".encode()).hexdigest()[:32] + '"'
    if_range = request.headers.get("If-Range")
    wanted = byte_range(request.headers.get("Range"), size) if if_range in (None, etag) else None
    filename = name.rsplit("/", 1)[-1]
    stored = storage.open(name, "rb")
    if wanted is None:
        response = FileResponse(stored, content_type=content_type, filename=filename)
        response["Content-Length"] = str(size)
    else:
        first, last = wanted
        stored.seek(first)
        response = FileResponse(_Slice(stored, last - first + 1), content_type=content_type, filename=filename)
        response.status_code = 206
        response["Content-Length"] = str(last - first + 1)
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = etag
    return response


def not_satisfiable_response(exc: RangeNotSatisfiable) -> HttpResponse:
    """The plain 416 for pages outside the API (the API answers in its JSON error shape)."""
    return HttpResponse(str(exc), status=416, headers=exc.headers, content_type="text/plain; charset=utf-8")


class _Slice:
    """At most `length` bytes of an open file from its current position; closing it closes the file.

    Only read() and close(): with no fileno(), a WSGI server's sendfile cannot send past the slice's end.
    """

    def __init__(self, stored, length: int):
        self._stored = stored
        self._left = length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        data = self._stored.read(self._left if size is None or size < 0 else min(size, self._left))
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stored.close()
