"""Chatterbox Turbo's real code path on the CPU, with random weights in the `from_local` layout.

The weights are built here (see random_chatterbox.py), loaded by the node's loader through the
library's `from_local`, a voice is cloned from uploaded audio, and a short capped utterance is
synthesized and streamed over HTTP. Random weights speak noise, so the checks are on shape, rate,
lengths and chunking, not on sound.
"""

import struct
from unittest import mock

import numpy as np
import pytest

pytest.importorskip("chatterbox", reason="chatterbox-tts is installed by `make tts-install`")

from tts_node.engines.base import SynthesisOptions
from tts_node.engines.chatterbox import TOKEN_SAMPLES
from tts_node.settings import Settings
from tts_node.tests.conftest import TOKEN, LiveNode, audio_file
from tts_node.tests.random_chatterbox import build_turbo_weights, tiny_gpt2_config

pytestmark = pytest.mark.slow
MAX_TOKENS = 8  # 0.32 s of speech per sentence: enough for two vocoder passes, quick on a CPU


@pytest.fixture(scope="module")
def turbo_node(tmp_path_factory):
    import chatterbox.models.t3.llama_configs as llama_configs
    import torch

    folder = tmp_path_factory.mktemp("chatterbox-turbo")
    settings = Settings(
        engine="chatterbox",
        model="turbo",
        weights_dir=folder,
        device="cpu",
        voices_dir=folder / "voices",
        max_speech_tokens=MAX_TOKENS,
        api_token=TOKEN,
    )
    with mock.patch.dict(llama_configs.LLAMA_CONFIGS, {"GPT2_medium": tiny_gpt2_config()}):
        build_turbo_weights(folder)
        torch.manual_seed(1234)
        with LiveNode(settings) as live:
            yield live


def test_loads_through_from_local_on_the_cpu(turbo_node):
    engine = turbo_node.node.engine
    assert (engine.model, engine.device, engine.sample_rate) == ("chatterbox-turbo", "cpu", 24000)
    assert engine.supports_tags and engine.supports_cloning
    with turbo_node.client() as client:
        health = client.get("/health").json()
    assert (health["model_loaded"], health["device"], health["sample_rate"]) == (True, "cpu", 24000)


def test_without_conds_pt_the_builtin_voice_is_refused_clearly(turbo_node):
    with turbo_node.client() as client:
        response = client.post("/synthesize", json={"text": "Hello there.", "voice_id": "default"})
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "synthesis_failed"
    assert "conds.pt" in response.json()["error"]["message"]


def test_clone_a_voice_then_stream_a_capped_utterance(turbo_node, tmp_path):
    with turbo_node.client() as client:
        wav = audio_file(tmp_path / "ref.wav", 5.5)
        created = client.post("/voices", files={"reference_audio": ("ref.wav", wav, "audio/wav")})
        assert created.status_code == 201, created.text
        voice = created.json()
        assert voice["cloned_by_engine"] is True
        assert voice["id"] in turbo_node.node.voices.cached_ids()  # conditionals computed at upload

        body = {"text": "Hello there [laugh].", "voice_id": voice["id"], "options": {"streaming": True}}
        with client.stream("POST", "/synthesize/stream", json=body) as response:
            assert response.status_code == 200
            assert response.headers["x-sample-rate"] == "24000"
            data = response.read()

    assert data[:4] == b"RIFF" and struct.unpack("<I", data[24:28])[0] == 24000
    pcm = np.frombuffer(data[44:], dtype="<i2")
    assert 0 < len(pcm) <= (MAX_TOKENS + 3) * TOKEN_SAMPLES  # 40 ms per speech token, 3 of them silence
    assert np.abs(pcm).max() > 0


def test_turbo_streams_inside_a_sentence(turbo_node):
    """The engine yields audio more than once for one sentence: first audio does not wait for its end."""
    node = turbo_node.node
    conds = node.scheduler.call(lambda: node.voices.conditionals(node.voices.all()[-1].id)).result(timeout=300)

    def run() -> list[int]:
        pieces = node.engine.stream(["One two three."], conds, SynthesisOptions(exaggeration=0.5, cfg_weight=0.5))
        return [len(a) for a in pieces if a is not None and len(a)]

    sizes = node.scheduler.call(run).result(timeout=300)
    assert len(sizes) >= 2
    assert sizes[0] <= 5 * TOKEN_SAMPLES  # the short first chunk: 5 tokens
    assert sum(sizes) <= (MAX_TOKENS + 3) * TOKEN_SAMPLES


def test_missing_weights_are_named(tmp_path):
    from tts_node.engines.chatterbox import ChatterboxEngine

    engine = ChatterboxEngine(Settings(engine="chatterbox", weights_dir=tmp_path, device="cpu"))
    with pytest.raises(RuntimeError, match=r"t3_turbo_v1\.safetensors"):
        engine.load()
