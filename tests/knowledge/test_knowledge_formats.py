"""Reading documents: each format's text, and every hostile file refused with a clear message."""

import pytest

from agents.knowledge import formats
from core.errors import ApplicationError
from tests.knowledge import files

LIMITS = {"max_text_bytes": 10_000, "max_chars": 5_000}


def extract(data: bytes, content_type: str = "", filename: str = "") -> formats.Extracted:
    return formats.extract(data, kind=formats.kind_of(content_type, filename, data), **LIMITS)


def refusal(data: bytes, content_type: str = "", filename: str = "") -> str:
    with pytest.raises(ApplicationError) as caught:
        extract(data, content_type, filename)
    assert (caught.value.code, caught.value.status_code, list(caught.value.fields)) == (
        "invalid_knowledge_document",
        400,
        ["file"],
    )
    return caught.value.message


def test_text_markdown_and_csv_are_read_as_utf8_without_a_byte_order_mark():
    assert extract("\ufeffCafé hours".encode(), "text/plain") == formats.Extracted("Café hours", "text")
    assert extract(b"# Hours\n9-5", "application/octet-stream", "hours.md") == formats.Extracted(
        "# Hours\n9-5", "markdown"
    )
    assert extract(b"day,open\nMon,9", "text/csv") == formats.Extracted("day,open\nMon,9", "csv")


def test_html_is_reduced_to_its_visible_text_with_headings_and_list_items():
    page = (
        b"<html><head><title>x</title><style>p{}</style><script>alert(1)</script></head><body>"
        b"<h1>Contact</h1><p>Where are you?<br>12 Harbour&nbsp;Street &amp; Co</p>"
        b"<ul><li>Mon</li><li>Tue</li></ul><table><tr><td>Sat</td><td>9-1</td></tr></table></body></html>"
    )

    assert extract(page, "text/html; charset=utf-8") == formats.Extracted(
        "# Contact\n\nWhere are you?\n12 Harbour Street & Co\n\n- Mon\n- Tue\n\nSat | 9-1", "html"
    )


def test_a_pdf_gives_each_pages_text_separated_by_form_feeds_and_is_known_by_its_bytes():
    data = files.pdf(["Where are you?", "12 Harbour Street,", "next to the ferry."], ["Parking is free."])

    assert extract(data, "application/octet-stream", "upload.bin") == formats.Extracted(
        "Where are you?\n12 Harbour Street, next to the ferry.\fParking is free.", "pdf"
    )


def test_a_word_document_gives_headings_paragraphs_list_items_and_tables():
    data = files.docx_file(("h1", "Contact"), ("p", "Q: Where are you?"), ("p", "A: 12 Harbour Street"), ("li", "Mon"))

    assert extract(data, formats.DOCX) == formats.Extracted(
        "# Contact\n\nQ: Where are you?\n\nA: 12 Harbour Street\n\n- Mon", "docx"
    )


@pytest.mark.parametrize(
    ("data", "content_type", "message"),
    [
        (b"\x89PNG\r\n\x1a\n", "image/png", "Upload plain text, Markdown, CSV, HTML, PDF or Word (.docx); this file is image/png."),
        (b"MZ\x90\x00", "application/msword", "this file is application/msword"),
        (b"data", "", "this file is of no type"),
        ("café".encode("latin-1"), "text/plain", "The file is not UTF-8 text."),
        (b"a\x00b", "text/plain", "NUL character"),
        (b" \n\t ", "text/markdown", "The file has no text."),
        (b"x" * 10_001, "text/plain", "The file is larger than 10,000 bytes."),
        (b"x" * 5_001, "text/plain", "The file has 5,001 characters; at most 5,000 are allowed."),
    ],
    ids=["image", "old-word", "no-type", "latin-1", "nul", "blank", "too-many-bytes", "too-many-characters"],
)  # fmt: skip
def test_a_file_that_is_not_usable_text_is_refused(data, content_type, message):
    assert message in refusal(data, content_type)


def test_a_corrupt_pdf_is_refused():
    assert refusal(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ntrailer <<>>\n%%EOF", formats.PDF) == (
        "The PDF could not be read: the file is damaged or not a PDF."
    )
    assert refusal(files.pdf(["Hello there"])[:200], formats.PDF) in (
        "The PDF could not be read: the file is damaged or not a PDF.",
        "The file has no text (a scanned PDF holds images of text, which are not read).",
    )


def test_a_password_protected_pdf_is_refused_and_one_with_an_empty_password_is_read():
    assert refusal(files.pdf(["Secret"], password="hunter2"), formats.PDF) == (
        "The PDF is protected by a password. Upload a copy without one."
    )
    assert extract(files.pdf(["Open to all."], password=""), formats.PDF).text == "Open to all."


def test_a_pdf_with_no_text_says_it_may_be_a_scan():
    assert refusal(files.pdf([]), formats.PDF) == (
        "The file has no text (a scanned PDF holds images of text, which are not read)."
    )


def test_a_pdf_with_more_text_than_allowed_is_refused(monkeypatch):
    data = files.pdf(["x" * 80] * 40, ["y" * 80] * 40)

    assert "at most 5,000 are allowed" in refusal(data, formats.PDF)


def test_a_pdf_with_too_many_pages_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PDF_PAGES", 2)

    assert refusal(files.pdf(["a"], ["b"], ["c"]), formats.PDF) == "The PDF has 3 pages; at most 2 are read. Split it."


def test_a_binary_file_over_its_size_limit_is_refused_before_it_is_parsed(monkeypatch):
    monkeypatch.setattr(formats, "MAX_FILE_BYTES", 100)

    assert refusal(files.pdf(["a"]), formats.PDF) == "The file is larger than 100 bytes."


def test_a_zip_bomb_docx_is_refused_before_anything_unpacks_it():
    assert refusal(files.zip_bomb_docx(), formats.DOCX) == (
        "The Word document unpacks to far more than its size (a zip bomb?); it is not read."
    )


def test_a_docx_with_too_many_members_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "DOCX_MAX_ENTRIES", 3)

    assert "zip bomb" in refusal(files.docx_file(("p", "Hello")), formats.DOCX)


def test_an_xml_entity_bomb_in_a_docx_is_not_expanded():
    assert refusal(files.billion_laughs_docx(), formats.DOCX) in (
        "The Word document could not be read: the file is damaged or not a .docx file.",
        "The file has no text.",
    )


@pytest.mark.parametrize(
    "data",
    [b"PK\x03\x04 not really a zip", b"just text", files.with_member(files.docx_file(("p", "x")), "word/document.xml", b"<nope")],
    ids=["broken-zip", "not-a-zip", "broken-xml"],
)  # fmt: skip
def test_a_file_that_claims_to_be_docx_but_is_not_one_is_refused(data):
    assert (
        refusal(data, formats.DOCX) == "The Word document could not be read: the file is damaged or not a .docx file."
    )


def test_a_zip_that_is_not_a_word_document_is_refused():
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hello")

    assert "could not be read" in refusal(out.getvalue(), "", "notes.docx")
