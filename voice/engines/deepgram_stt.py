"""Deepgram live transcription through livekit-plugins-deepgram (nova-2, interim
results, punctuation, smart formatting)."""

from urllib.parse import urlsplit

import aiohttp
from livekit.agents import utils
from livekit.plugins import deepgram

from agents.engines import DEEPGRAM
from voice.engines.breaker import breaker_for
from voice.engines.guarded import GuardedSTT

DEFAULT_BASE_URL = "https://api.deepgram.com/v1/listen"


class DeepgramSTT(deepgram.STT):
    """The plugin's STT, which also works outside a LiveKit job (media worker, tests).

    The plugin takes its aiohttp session from the job context; our media worker has none, so the
    STT opens (and later closes) its own session there.
    """

    _owned_session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            try:
                self._session = utils.http_context.http_session()
            except RuntimeError:
                self._session = self._owned_session = aiohttp.ClientSession()
        return self._session

    async def aclose(self) -> None:
        await super().aclose()
        if self._owned_session is not None:
            await self._owned_session.close()
            self._owned_session = None


def listen_url(base_url: str | None) -> str:
    """The live endpoint: a bare host ('https://dg.internal') gets Deepgram's '/v1/listen' path."""
    if not base_url:
        return DEFAULT_BASE_URL
    return base_url.rstrip("/") + "/v1/listen" if urlsplit(base_url).path in ("", "/") else base_url


def build(config: dict, *, secrets: dict, **_context) -> list[GuardedSTT]:
    """The registry's builder: Deepgram behind the breaker of its endpoint."""
    base_url = secrets.get("deepgram_base_url")
    deepgram = build_deepgram(config, api_key=secrets["deepgram_api_key"], base_url=base_url)
    return [GuardedSTT(deepgram, breaker=breaker_for(DEEPGRAM, listen_url(base_url)), label=DEEPGRAM)]


def build_deepgram(config: dict, *, api_key: str, base_url: str | None) -> DeepgramSTT:
    return DeepgramSTT(
        model=config["model"],
        language=config.get("language") or "en-US",
        interim_results=bool(config.get("interim_results", True)),
        punctuate=bool(config.get("punctuate", True)),
        smart_format=bool(config.get("smart_format", True)),
        endpointing_ms=int(config.get("endpointing_ms", 25)),
        sample_rate=16000,
        api_key=api_key,
        base_url=listen_url(base_url),
    )
