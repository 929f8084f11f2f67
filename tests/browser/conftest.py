"""Browser tests: the real ASGI application on a local port, driven by headless Chromium (Playwright).

- `asgi_server`: `voiceapp.asgi.application` (HTTP, websockets, static files) served by Uvicorn in a
  thread of this pytest process, started once per session. It shares the tests' database: on
  PostgreSQL every thread has its own connection to the test database and tests use
  `transactional_db`, so committed rows are seen; on SQLite the test database lives in memory and
  every thread uses the test's own connection while a browser test runs (what Django's
  `LiveServerTestCase` does for its server threads; see `_shared_sqlite_connection`).
- `chromium`: one headless Chromium for the package (the system's `/usr/bin/chromium`, or
  `CHROMIUM_PATH`; Playwright never downloads a browser), whose fake microphone plays
  `fake_mic.wav`: a few seconds of silence, "When are you open?", then silence.
- `new_page(width=..., height=...)`: a page in a fresh browser context (own cookies), microphone allowed.
- `sign_in(page, user)` and `screenshot(page, name)`: a signed-in session without the form, and a
  full-page PNG under `artifacts/screenshots/` (or `SCREENSHOT_DIR`).

BROWSER_TESTS=0 skips them all, as does a machine without Chromium or Playwright (unless
BROWSER_REQUIRED=1, as in CI, which makes that a failure).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.test import Client

REPO_ROOT = Path(__file__).resolve().parents[2]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
QUESTION = "When are you open?"
# The fake microphone: the question after enough silence for the agent to finish its greeting
# (about 4 s after the start on two idle cores, 8 s on busy ones), then silence until hang-up.
MIC_LEAD_SECONDS = 14.0
MIC_TAIL_SECONDS = 8.0
# Generous waits: the offline speech engines run in the server thread on small CI machines.
PAGE_TIMEOUT_MS = 30_000


def chromium_path() -> str | None:
    wanted = os.environ.get("CHROMIUM_PATH")
    if wanted:
        return wanted if os.access(wanted, os.X_OK) else None
    for candidate in ("/usr/bin/chromium", "chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found:
            return found
    return None


def browser_tests_unavailable() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if os.environ.get("BROWSER_TESTS", "1") == "0":
        return "BROWSER_TESTS=0"
    if chromium_path() is None:
        return "no Chromium binary (install Debian's `chromium`, or set CHROMIUM_PATH)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -r requirements-dev.txt)"
    return None


def pytest_runtest_setup(item):
    # A conftest's runtest hooks see only the tests under its folder: these are skipped before any fixture runs.
    reason = browser_tests_unavailable()
    if reason and os.environ.get("BROWSER_REQUIRED") == "1" and reason != "BROWSER_TESTS=0":
        pytest.fail(f"BROWSER_REQUIRED=1 but the browser tests cannot run: {reason}")  # CI: never a silent skip
    if reason:
        pytest.skip(f"browser tests skipped: {reason}")


# --- The live server: tests/live_server.py (shared with the websocket client tests) -------------


# --- Chromium --------------------------------------------------------------------------------------


def _fake_mic_wav(path: Path) -> Path:
    from tests.telephony.peer import RATE, read_wav, speech_wav, write_wav

    question = read_wav(speech_wav(QUESTION), rate=RATE)
    silence = [np.zeros(int(RATE * seconds), dtype=np.int16) for seconds in (MIC_LEAD_SECONDS, MIC_TAIL_SECONDS)]
    return write_wav(path, np.concatenate([silence[0], question, silence[1]]), RATE)


@pytest.fixture(scope="package")
def fake_mic_wav(tmp_path_factory) -> Path:
    return _fake_mic_wav(tmp_path_factory.mktemp("browser") / "fake_mic.wav")


@pytest.fixture(scope="package")
def speech_engines():
    """Load the offline engines (Whisper, piper, Silero) before the first test call, not during it.

    The fake microphone speaks on a fixed schedule: a first call that also loads the models could
    still be greeting when the caller's question comes, and the question would cut the greeting short.
    """
    from voice.engines import build_vad
    from voice.engines.piper_tts import get_voice
    from voice.engines.whisper_stt import get_model

    whisper = get_model()
    segments, _ = whisper.transcribe(np.zeros(16000, dtype=np.float32), language="en", beam_size=1)
    list(segments)
    get_voice()
    build_vad(settings.VOICE_PIPELINE_DEFAULTS["vad"])


@pytest.fixture(scope="package")
def chromium(fake_mic_wav):
    """One headless Chromium for the browser tests, its microphone fed by `fake_mic_wav` (once per capture)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps its event loop running in this thread while it is started, and
    # Django refuses ORM calls from a thread with a running loop. The tests' own database work
    # (factories, assertions, pytest-django's flush) is plain synchronous code, so allow it while
    # the browser is up, and only then.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium_path(),
                headless=True,
                args=[
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    # %noloop: the file plays once per capture, then silence.
                    f"--use-file-for-fake-audio-capture={fake_mic_wav}%noloop",
                    "--autoplay-policy=no-user-gesture-required",
                ],
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(chromium, asgi_server):
    """new_page(width=1280, height=900) -> a page of a fresh context on the live server, microphone allowed.

    Uncaught JavaScript errors of the page are collected in `page.js_errors`.
    """
    contexts = []

    def make(width: int = DESKTOP["width"], height: int = DESKTOP["height"]):
        context = chromium.new_context(
            base_url=asgi_server.url,
            viewport={"width": width, "height": height},
            permissions=["microphone"],
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def sign_in(asgi_server):
    """sign_in(page, user): give the page's context a signed-in session (no form; the form has its own test)."""

    def sign(page, user):
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": asgi_server.url}])
        return page

    return sign


def screenshot_dir() -> Path:
    return Path(os.environ.get("SCREENSHOT_DIR") or REPO_ROOT / "artifacts" / "screenshots")


@pytest.fixture
def screenshot():
    """screenshot(page, name): a full-page PNG at `<SCREENSHOT_DIR or artifacts/screenshots>/<name>.png`."""

    def take(page, name: str) -> Path:
        folder = screenshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
