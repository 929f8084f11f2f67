"""CSV downloads of the dashboard, streamed row by row (a long export never sits whole in memory)."""

import csv
import re

from django.http import StreamingHttpResponse

# A cell a spreadsheet would run as a formula (CSV injection): = @ tab CR always, + and - unless a number.
FORMULA_START = re.compile(r"^[=@\t\r]|^[+-](?![0-9][0-9 ().]*$)")


class _Echo:
    """csv.writer writes into this and gets the line back, so each row can be yielded as it is made."""

    def write(self, value: str) -> str:
        return value


def safe_cell(value) -> str:
    """The value as text, with a quote in front of anything a spreadsheet would take for a formula."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if FORMULA_START.match(text) else text


def csv_response(filename: str, header: list[str], rows) -> StreamingHttpResponse:
    """A streamed CSV attachment: the header, then each of `rows` (iterables of cells) as it is produced."""
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response
