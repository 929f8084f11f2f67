"""In-band DTMF: the dual tones of keypad digits as audio (ITU-T Q.23 frequencies), for the agent to play
into a call, e.g. to get through a phone menu on an outbound call. `w` pauses half a second, as in Twilio's
`<Play digits>`. Played on the call's media leg, so it works on any carrier that carries G.711 or Opus."""

import re

import numpy as np
from livekit import rtc

ROWS, COLUMNS = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")
FREQUENCIES = {key: (ROWS[r], COLUMNS[c]) for r, row in enumerate(KEYS) for c, key in enumerate(row)}
DIGITS = re.compile(r"^[0-9*#A-Dw]{1,32}$")
TONE_SECONDS, GAP_SECONDS, PAUSE_SECONDS = 0.1, 0.1, 0.5  # Q.24 asks for at least 40 ms of each
LEVEL = 0.25  # of full scale, per tone


def valid(digits: str) -> bool:
    return bool(DIGITS.match(digits))


def tones(digits: str, *, rate: int = 8000) -> rtc.AudioFrame:
    """Mono s16 audio of `digits` (ValueError for anything but 0-9 * # A-D w)."""
    if not valid(digits):
        raise ValueError(f"not DTMF digits: {digits!r}")
    pieces = []
    tone_t = np.arange(int(rate * TONE_SECONDS)) / rate
    for digit in digits:
        if digit == "w":
            pieces.append(np.zeros(int(rate * PAUSE_SECONDS)))
            continue
        low, high = FREQUENCIES[digit]
        pieces.append(LEVEL * (np.sin(2 * np.pi * low * tone_t) + np.sin(2 * np.pi * high * tone_t)))
        pieces.append(np.zeros(int(rate * GAP_SECONDS)))
    samples = (np.concatenate(pieces) * 32767).astype(np.int16)
    return rtc.AudioFrame(samples.tobytes(), rate, 1, len(samples))
