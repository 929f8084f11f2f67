"""A document from a web page: the SSRF guard on every hop and on the address connected to, size and time
limits, and HTML reduced to text."""

from itertools import count

import pytest

from agents.knowledge import fetch
from core.errors import ApplicationError
from integrations import netguard
from tests.knowledge import files

PAGE = b"""<!doctype html><html><head><title>Acme</title><script>track()</script></head>
<body><nav>Home | Team</nav><h1>Contact</h1><p>Where are you? 12 Harbour Street.</p></body></html>"""


def refused(url: str, **kwargs) -> str:
    with pytest.raises(ApplicationError) as caught:
        fetch.fetch(url, max_chars=10_000, **kwargs)
    assert (caught.value.code, caught.value.status_code, list(caught.value.fields)) == (
        "invalid_knowledge_document",
        400,
        ["url"],
    )
    return caught.value.message


def test_an_html_page_is_fetched_and_reduced_to_text(site):
    site.page("/contact", PAGE, "text/html; charset=utf-8")

    page = fetch.fetch(site.url("/contact"), max_chars=10_000)

    assert page == fetch.Fetched(
        site.url("/contact"), "Home | Team\n\n# Contact\n\nWhere are you? 12 Harbour Street.", "html"
    )


def test_a_page_in_another_charset_is_decoded_by_its_header_or_its_meta_tag(site):
    site.page("/header", "<p>Café</p>".encode("cp1252"), "text/html; charset=windows-1252")
    site.page("/meta", b'<html><head><meta charset="iso-8859-1"></head><p>Caf\xe9</p></html>', "text/html")

    assert fetch.fetch(site.url("/header"), max_chars=100).text == "Café"
    assert fetch.fetch(site.url("/meta"), max_chars=100).text == "Café"


def test_a_pdf_or_plain_text_url_is_read_like_an_upload(site):
    site.page("/faq.pdf", files.pdf(["Where are you? 12 Harbour Street."]), "application/pdf")
    site.page("/faq.txt", b"Q: Parking? A: Free.", "text/plain")

    pdf, text = (fetch.fetch(site.url(path), max_chars=1000) for path in ("/faq.pdf", "/faq.txt"))

    assert (pdf.text, pdf.format) == ("Where are you? 12 Harbour Street.", "pdf")
    assert (text.text, text.format) == ("Q: Parking? A: Free.", "text")


def test_redirects_are_followed_and_the_final_address_is_kept(site):
    site.page("/old", b"", status=301, Location="/new")
    site.page("/new", b"<p>Moved here.</p>")

    assert fetch.fetch(site.url("/old"), max_chars=100) == fetch.Fetched(site.url("/new"), "Moved here.", "html")


def test_a_redirect_loop_is_refused(site):
    site.page("/loop", b"", status=302, Location="/loop")

    assert refused(site.url("/loop")) == "The page redirected more than 3 times."
    assert site.hits == ["/loop"] * 4


def test_a_loopback_address_is_refused_in_production_before_anything_is_sent(site, settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    site.page("/contact", PAGE)

    assert refused(site.url("/contact")) == (
        "The platform does not fetch this address: 127.0.0.1 is a private, loopback or link-local address, "
        "which the platform does not call."
    )
    assert site.hits == []


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/", "http://[::1]/", "http://localhost/"]
)
def test_private_link_local_and_metadata_addresses_are_refused_in_production(settings, url):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    netguard.forget()

    assert "is a private, loopback or link-local address" in refused(url)


def test_every_redirect_is_checked_again(site, monkeypatch):
    site.page("/to-internal", b"", status=302, Location="http://internal.example/admin")
    checked = []

    def guard(url):
        checked.append(url)
        return "internal.example is a private address." if "internal.example" in url else ""

    monkeypatch.setattr(fetch, "address_problem", guard)

    assert (
        refused(site.url("/to-internal"))
        == "The platform does not fetch this address: internal.example is a private address."
    )
    assert checked == [site.url("/to-internal"), "http://internal.example/admin"]


def test_the_address_connected_to_is_checked_too_when_dns_said_otherwise(site, settings, monkeypatch):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = False
    monkeypatch.setattr(fetch, "address_problem", lambda url: "")  # the name resolved to a public address at check time
    site.page("/contact", PAGE)

    assert refused(site.url("/contact")) == (
        "The platform does not fetch this address: it is a private, loopback or link-local address."
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/faq.txt", "Give an http:// or https:// address."),
        ("file:///etc/passwd", "Give an http:// or https:// address."),
        ("http://user:secret@example.com/", "The address must not contain a user name or password."),
    ],
)
def test_other_schemes_and_credentials_in_the_address_are_refused(url, message):
    assert refused(url) == message


def test_an_error_status_is_refused(site):
    assert refused(site.url("/missing")) == "The page answered HTTP 404."


def test_a_page_declaring_more_than_the_limit_is_refused_before_its_body_is_read(site, monkeypatch):
    monkeypatch.setattr(fetch, "FETCH_MAX_BYTES", 1000)
    site.page("/big", b"x" * 2000, "text/plain", **{"Content-Length": "2000"})

    assert refused(site.url("/big")) == "The page is larger than 1,000 bytes."


def test_a_page_growing_past_the_limit_without_saying_its_size_is_cut_off(site, monkeypatch):
    monkeypatch.setattr(fetch, "FETCH_MAX_BYTES", 1000)
    site.page("/stream", [b"x" * 400] * 5, "text/plain")

    assert refused(site.url("/stream")) == "The page is larger than 1,000 bytes."


def test_a_page_still_arriving_after_the_time_limit_is_abandoned(site):
    site.page("/slow", [b"<p>a</p>"] * 5)
    ticks = count()

    message = refused(site.url("/slow"), clock=lambda: next(ticks) * 10.0)  # every look at the clock: 10 s later

    assert message == "The page took longer than 15 seconds to download."


def test_a_server_that_never_answers_times_out(monkeypatch):
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    monkeypatch.setattr(fetch, "FETCH_SECONDS", 0.3)
    try:
        assert (
            refused(f"http://127.0.0.1:{listener.getsockname()[1]}/") == "The page did not answer within 0.3 seconds."
        )
    finally:
        listener.close()


def test_an_unreachable_host_is_said_in_words(settings):
    settings.INTEGRATION_ALLOW_PRIVATE_NETWORKS = True
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed

    assert refused(f"http://127.0.0.1:{port}/") == "The page could not be fetched (ConnectError)."


def test_a_page_with_no_text_or_too_much_is_refused(site):
    site.page("/empty", b"<html><script>x()</script></html>")
    site.page("/long", b"<p>" + b"word " * 3000 + b"</p>")

    assert refused(site.url("/empty")) == "The page has no text."
    assert refused(site.url("/long")).startswith("The page has 14,999 characters; at most 10,000 are allowed.")


def test_a_page_of_a_type_the_platform_does_not_read_is_refused(site):
    site.page("/logo", b"\x89PNG\r\n", "image/png")

    assert refused(site.url("/logo")).endswith("this page is image/png.")
