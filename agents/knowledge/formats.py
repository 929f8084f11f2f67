"""The text of an uploaded or fetched document: plain text, Markdown, CSV, HTML, PDF (pypdf) and DOCX (python-docx).

Every file is hostile until read: a type the platform does not read, a file over its size limit, text that
is not UTF-8, a corrupt or password-protected PDF, a DOCX that is not a Word package or whose zip would
inflate past its limits (a zip bomb), or one with no text at all is refused with an ApplicationError (a
400 naming the `file` field), never a 500. The text comes back as plain text or Markdown, which the
chunker reads: PDF pages are separated by form feeds, Word and HTML headings become `#` headings.
"""

import io
import logging
import mimetypes
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser

from core.errors import ApplicationError

log = logging.getLogger(__name__)

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_TYPES = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/csv": "csv",
    "text/html": "html",
}
BINARY_TYPES = {PDF: "pdf", DOCX: "docx"}
FORMATS_NAMED = "plain text, Markdown, CSV, HTML, PDF or Word (.docx)"
MAX_FILE_BYTES = 20 * 1024 * 1024  # a PDF or DOCX carries images and layout besides its text
MAX_PDF_PAGES = 2000
DOCX_MAX_ENTRIES = 2000
DOCX_MAX_UNPACKED_BYTES = 100 * 1024 * 1024
DOCX_MAX_RATIO = 200  # a member inflating more than this (and past 1 MB) is a zip bomb, not a document
PAGE_BREAK = "\f"


@dataclass(frozen=True)
class Extracted:
    text: str
    format: str  # a KnowledgeDocument.Format value


def refused(message: str, field: str = "file") -> ApplicationError:
    return ApplicationError(message, code="invalid_knowledge_document", fields={field: [message]})


def kind_of(content_type: str, filename: str, data: bytes) -> str:
    """The media type the file is read as: the declared one, else its name's; a PDF is known by its bytes."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in ("", "application/octet-stream", "binary/octet-stream"):  # curl and browsers send no type for .md
        kind = mimetypes.guess_type(filename or "")[0] or kind
        if not kind and (filename or "").lower().endswith((".md", ".markdown")):
            kind = "text/markdown"
    if data.startswith(b"%PDF-"):
        kind = PDF
    return kind


def extract(data: bytes, *, kind: str, max_text_bytes: int, max_chars: int, charset: str | None = None) -> Extracted:
    """The document's text from a file of media type `kind`, within the limits.

    Text must be UTF-8 unless `charset` is given (a web page's), which decodes it with replacements."""
    if kind in TEXT_TYPES:
        if len(data) > max_text_bytes:
            raise refused(f"The file is larger than {max_text_bytes:,} bytes.")
        text = decode(data, charset=charset)
        fmt = TEXT_TYPES[kind]
        if fmt == "html":
            text = html_text(text)
    elif kind in BINARY_TYPES:
        if len(data) > MAX_FILE_BYTES:
            raise refused(f"The file is larger than {MAX_FILE_BYTES:,} bytes.")
        fmt = BINARY_TYPES[kind]
        text = pdf_text(data, max_chars) if fmt == "pdf" else docx_text(data)
    else:
        raise refused(f"Upload {FORMATS_NAMED}; this file is {kind or 'of no type'}.")
    return Extracted(checked(text, max_chars, fmt), fmt)


def decode(data: bytes, *, charset: str | None = None) -> str:
    """UTF-8 text (a byte-order mark dropped); with a `charset` (web pages) undecodable bytes are replaced."""
    if charset is None:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise refused("The file is not UTF-8 text.") from exc
    try:
        return data.decode(charset, "replace")
    except LookupError:  # a charset Python does not know
        return data.decode("utf-8", "replace")


def checked(text: str, max_chars: int, fmt: str) -> str:
    if "\x00" in text:
        raise refused("The file contains a NUL character: it is not plain text.")
    if not text.strip():
        hint = " (a scanned PDF holds images of text, which are not read)" if fmt == "pdf" else ""
        raise refused(f"The file has no text{hint}.")
    if len(text) > max_chars:
        raise refused(
            f"The file has {len(text):,} characters; at most {max_chars:,} are allowed. Split it into several documents."
        )
    return text


# --- PDF ------------------------------------------------------------------------------------------

HYPHENATED_RE = re.compile(r"(\w)-\n(\w)")


def pdf_text(data: bytes, max_chars: int) -> str:
    """Each page's text, pages separated by form feeds; lines of one paragraph joined."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise refused("The PDF is protected by a password. Upload a copy without one.")
        pages = reader.pages
        count = len(pages)
    except ApplicationError:
        raise
    except Exception as exc:  # a malformed file fails in many ways inside the parser (PyPdfError and others)
        log.info("knowledge upload: unreadable PDF (%s: %s)", type(exc).__name__, str(exc)[:200])
        raise refused("The PDF could not be read: the file is damaged or not a PDF.") from exc
    if count > MAX_PDF_PAGES:
        raise refused(f"The PDF has {count:,} pages; at most {MAX_PDF_PAGES:,} are read. Split it.")
    texts: list[str] = []
    total = 0
    for number in range(count):
        try:
            page = pages[number].extract_text() or ""
        except Exception as exc:  # one broken page does not lose the others
            log.info("knowledge upload: PDF page %d unreadable (%s)", number + 1, type(exc).__name__)
            page = ""
        texts.append(reflow(page))
        total += len(texts[-1])
        if total > max_chars:
            break  # checked() refuses it with the count so far; reading on would only cost time
    return PAGE_BREAK.join(texts)


def reflow(page: str) -> str:
    """A PDF page's lines joined into paragraphs: a line that ends a sentence ends its line."""
    page = HYPHENATED_RE.sub(r"\1\2", page.replace("\x00", ""))
    out: list[str] = []
    for line in page.splitlines():
        line = " ".join(line.split())
        if not line:
            out.append("")
        elif out and out[-1] and not out[-1].endswith((".", "!", "?", ":", ";")) and not line.startswith(("•", "-")):
            out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out).strip()


# --- DOCX -----------------------------------------------------------------------------------------


def docx_text(data: bytes) -> str:
    """The body's paragraphs (headings as `#`, list items as `-`) and tables (cells joined by ` | `)."""
    check_zip(data)
    import docx
    from docx.table import Table

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = []
        for block in document.iter_inner_content():
            blocks.append(_table_text(block) if isinstance(block, Table) else _paragraph_text(block))
    except Exception as exc:  # not a Word package, a missing part, malformed XML
        log.info("knowledge upload: unreadable DOCX (%s: %s)", type(exc).__name__, str(exc)[:200])
        raise refused("The Word document could not be read: the file is damaged or not a .docx file.") from exc
    return "\n\n".join(block for block in blocks if block.strip())


def check_zip(data: bytes) -> None:
    """Refuse a DOCX whose zip is not one, or would inflate past the limits, before anything unpacks it."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise refused("The Word document could not be read: the file is damaged or not a .docx file.") from exc
    unpacked = sum(member.file_size for member in members)
    bomb = any(
        member.file_size > 1024 * 1024 and member.file_size > DOCX_MAX_RATIO * max(member.compress_size, 1)
        for member in members
    )
    if len(members) > DOCX_MAX_ENTRIES or unpacked > DOCX_MAX_UNPACKED_BYTES or bomb:
        log.info("knowledge upload: DOCX refused as a zip bomb (%d members, %d bytes unpacked)", len(members), unpacked)
        raise refused("The Word document unpacks to far more than its size (a zip bomb?); it is not read.")


def _paragraph_text(paragraph) -> str:
    text = paragraph.text.strip()
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if not text:
        return ""
    if style == "Title":
        return f"# {text}"
    if m := re.match(r"Heading (\d)", style):
        return f"{'#' * min(int(m[1]), 6)} {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells))  # merged cells repeat
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# --- HTML -----------------------------------------------------------------------------------------

SKIPPED = frozenset({"script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas", "select"})
BLOCKS = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "ul", "ol", "dl", "dd",
        "dt", "table", "tr", "blockquote", "pre", "address", "form", "figure", "figcaption", "details", "summary",
    }
)  # fmt: skip
HEADINGS = {f"h{n}": n for n in range(1, 7)}


class _HTMLText(HTMLParser):
    """A page's visible text: blocks as paragraphs, headings as `#` lines, list items as `-` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in HEADINGS:
            self.parts.append("\n\n" + "#" * HEADINGS[tag] + " ")
        elif tag in BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")

    def handle_endtag(self, tag) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in HEADINGS or tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data) -> None:
        if not self.skipping:
            self.parts.append(" ".join(data.split()) if data.strip() else " ")

    def text(self) -> str:
        lines = [" ".join(line.split()).strip(" |") for line in "".join(self.parts).split("\n")]
        lines = [line if line not in ("-", "#") else "" for line in lines]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return parser.text()
