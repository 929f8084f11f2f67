"""The mu-law tables of the Twilio leg against the standard library's G.711 codec (audioop, Python <= 3.12)."""

import warnings

import numpy as np
import pytest

from telephony.carriers.twilio.stream import mulaw_decode, mulaw_encode

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    audioop = pytest.importorskip("audioop", reason="audioop left the standard library in Python 3.13")


def test_every_code_decodes_as_the_standard_library_decodes_it():
    codes = bytes(range(256))
    expected = np.frombuffer(audioop.ulaw2lin(codes, 2), dtype="<i2")
    assert mulaw_decode(codes).tolist() == expected.tolist()


def test_every_16_bit_sample_encodes_as_the_standard_library_encodes_it():
    samples = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(samples) == audioop.lin2ulaw(samples.astype("<i2").tobytes(), 2)


def test_a_decoded_code_encodes_back_to_itself():
    codes = bytes(range(256))
    again = mulaw_encode(mulaw_decode(codes))
    # 0x7F and 0xFF are both zero (negative and positive); every other code survives the round trip.
    assert [c for c, d in zip(codes, again, strict=True) if c != d] == [0x7F]
