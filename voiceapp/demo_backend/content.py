"""DEMO ONLY: the demo agent's tools (pointing at this backend) and its FAQ, which `seed_demo` installs and refreshes.

A re-run of `seed_demo` brings an older demo up to date without undoing what its user changed: a seeded tool
is replaced only while it still points at a demo backend (this one, or the old `127.0.0.1:9000` that never
existed), and the FAQ only while it is, word for word, a text an earlier seed wrote.
"""

from urllib.parse import urlsplit, urlunsplit

from voiceapp.demo_backend import practice

DEMO_PATH = "/demo-backend/"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"  # `make run`'s HOST and PORT
LEGACY_TOOL_URL = "http://127.0.0.1:9000/tools/"  # where the first demo's check_availability pointed
# A server listening on every address is called on loopback.
ANY_HOST = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}  # noqa: S104 (hosts to replace, nothing binds here)

FAQ = "\n".join(
    [
        "Q: When are you open? A: Monday to Friday from 8 AM to 5 PM, and Saturday mornings from 9 AM to noon. "
        "We're closed on Sundays.",
        "Q: Where are you? A: We're at 12 Harbour Street, next to the pharmacy.",
        "Q: Where can I park? A: There's free parking behind the building, with two accessible spaces by the door.",
        "Q: Do you take dental insurance? A: Yes, we accept most major dental insurance plans. Please bring your insurance card "
        "to your first visit.",
        "Q: How much is a check-up? A: A check-up is 75 dollars without insurance, or 150 dollars together "
        "with a cleaning.",
        "Q: How much is a cleaning? A: A cleaning is 95 dollars without insurance.",
        "Q: How much is teeth whitening? A: Whitening in the chair is 350 dollars.",
        "Q: How much is a filling? A: A filling starts at 150 dollars, depending on its size and material.",
        "Q: What is your cancellation policy? A: Please cancel or move your appointment at least 24 hours "
        "ahead. A late cancellation or a missed appointment costs 25 dollars.",
        "Q: Do you take new patients? A: Yes, we welcome new patients of all ages. Please come 10 minutes "
        "early to your first visit with your insurance card and a photo ID.",
        "Q: What if I have a dental emergency? A: Call us as soon as we open: we keep time free every day for "
        "emergencies. For heavy bleeding or swelling that makes it hard to breathe, call 911.",
        "Q: Which cards and payment methods do you accept? A: We take cash, Visa, Mastercard, American Express "
        "and debit cards, Apple Pay and Google Pay, and we offer payment plans for larger treatments.",
    ]
)

# FAQ texts earlier versions of seed_demo wrote: one of these, unedited, is replaced by FAQ.
PREVIOUS_FAQS = (
    "Q: When are you open? A: Monday to Friday, 8 AM to 5 PM, and Saturday mornings 9 to noon.\n"
    "Q: Where are you? A: 12 Harbour Street, next to the pharmacy, with free parking behind the building.\n"
    "Q: Do you take insurance? A: Yes, most major dental plans; bring your card to the first visit.\n"
    "Q: How much is a check-up? A: A check-up with cleaning is 95 dollars without insurance.",
)

DATE = {"type": "string", "format": "date", "description": "The day, as YYYY-MM-DD."}
TIME = {"type": "string", "format": "time", "description": "The start time, as HH:MM on a 24-hour clock."}
NAME = {"type": "string", "description": "The patient's full name."}
REFERENCE = {"type": "string", "description": "The booking reference, e.g. DD4821, if the caller has it."}
SERVICE = {
    "type": "string",
    "enum": list(practice.SERVICES),
    "description": "What the visit is for (a check-up when the caller does not say).",
}


def _tool(base_url: str, name: str, description: str, properties: dict, required: list[str], filler: str) -> dict:
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
        "webhook_url": f"{base_url}{DEMO_PATH}{name}",
        "method": "POST",
        "timeout_seconds": 10,
        "filler": filler,
    }


def tools(base_url: str) -> list[dict]:
    """The demo agent's tools, calling the demo backend of the platform served at `base_url`."""
    return [
        _tool(
            base_url,
            "check_availability",
            "Check which appointment times are still free on a given day, before booking.",
            {"date": DATE},
            ["date"],
            "Let me check the calendar for you.",
        ),
        _tool(
            base_url,
            "book_appointment",
            "Book a new appointment for a cleaning, check-up or other visit on a given day and time.",
            {
                "date": DATE,
                "time": TIME,
                "name": NAME,
                "service": SERVICE,
            },
            ["date", "time", "name"],
            "Let me book that for you.",
        ),
        _tool(
            base_url,
            "cancel_appointment",
            "Cancel an existing appointment.",
            {
                "name": NAME,
                "date": {**DATE, "description": "The day of the appointment, as YYYY-MM-DD."},
                "reference": REFERENCE,
            },
            ["name"],
            "Let me find your appointment.",
        ),
        _tool(
            base_url,
            "reschedule_appointment",
            "Reschedule an existing appointment: move it to a new day and time.",
            {
                "name": NAME,
                "new_date": {**DATE, "description": "The new day, as YYYY-MM-DD."},
                "new_time": {**TIME, "description": "The new start time, as HH:MM on a 24-hour clock."},
                "reference": REFERENCE,
            },
            ["name", "new_date", "new_time"],
            "Let me move that for you.",
        ),
    ]


def normal_base_url(url: str) -> str:
    """`url` without a trailing slash, a listen-everywhere host replaced by loopback; ValueError if not http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    host = parts.netloc
    if parts.hostname in ANY_HOST:
        bare = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        host = host.replace(bare, ANY_HOST[parts.hostname], 1)
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def is_demo_tool(tool: dict) -> bool:
    """Whether a tool still points at a demo backend (so the seed may refresh it)."""
    url = str(tool.get("webhook_url", ""))
    return url.startswith(LEGACY_TOOL_URL) or urlsplit(url).path.startswith(DEMO_PATH)


def base_url_in_use(current: list[dict]) -> str | None:
    """The platform address the agent's demo tools call now, if any of them calls this demo backend."""
    for tool in current:
        url = str(tool.get("webhook_url", ""))
        if DEMO_PATH in url and not url.startswith(LEGACY_TOOL_URL):
            return url.split(DEMO_PATH, 1)[0]
    return None


def merged_tools(current: list[dict], seeded: list[dict]) -> list[dict]:
    """The agent's tools with the seed's brought up to date: the user's own tools, and seeded tools the
    user pointed at another backend, are kept as they are and where they are."""
    by_name = {tool["name"]: tool for tool in seeded}
    merged = [by_name[t.get("name")] if t.get("name") in by_name and is_demo_tool(t) else t for t in current]
    present = {t.get("name") for t in current}
    return merged + [tool for tool in seeded if tool["name"] not in present]


def refreshed_faq(content: str) -> str | None:
    """The new FAQ when `content` is an earlier seed's, untouched; None when it is current or was edited."""
    return FAQ if content.strip() in {text.strip() for text in PREVIOUS_FAQS} else None
