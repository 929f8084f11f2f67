"""The per-turn latencies a call's turns carry in `TranscriptTurn.metadata`, in milliseconds.

The calls app owns the stored turns, so it names these keys; the voice runtime fills them from the
framework's measurements (voice/metrics.py) and the call page reads them.
"""

STT_MS = "stt_ms"  # caller turn: end of speech to final transcript
END_OF_TURN_MS = "end_of_turn_ms"  # caller turn: how long the end of the turn took to decide
LLM_TTFT_MS = "llm_ttft_ms"  # agent turn: LLM time to first token
TTS_TTFB_MS = "tts_ttfb_ms"  # agent turn: TTS time to first audio
E2E_MS = "e2e_ms"  # agent turn: end of caller speech to the first agent audio of the turn

# What the call page shows, in order.
COLUMNS = (
    (STT_MS, "Speech to text"),
    (LLM_TTFT_MS, "LLM first token"),
    (TTS_TTFB_MS, "TTS first audio"),
    (E2E_MS, "Total (caller stops → agent speaks)"),
)
