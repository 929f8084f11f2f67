"""Chatterbox on the GPU: Turbo (default), standard or multilingual, from the operator's weights.

The weights are loaded with the library's own `from_local` from `TTS_WEIGHTS_DIR`; nothing is
downloaded (HF_HUB_OFFLINE=1). The T3 language model runs in the configured precision on CUDA
(float16 by default); S3Gen, whose vocoder does STFT maths, stays in float32.

Turbo streams inside a sentence: T3's decoding loop (the library's `inference_turbo`, rewritten as
a generator) yields one speech token per step, and every few tokens S3Gen turns the new ones into
audio, re-reading a few earlier tokens as context so chunk edges join. The first chunk is short,
so first audio comes after a handful of tokens, not after the utterance. Standard and multilingual
keep the library's `generate()` (classifier-free guidance, alignment checks) and stream sentence
by sentence.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tts_node.engines.base import Engine, SynthesisOptions
from tts_node.settings import Settings

WEIGHT_FILES = {
    "turbo": ("ve.safetensors", "t3_turbo_v1.safetensors", "s3gen_meanflow.safetensors"),
    "standard": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
    "multilingual": ("ve.pt", "t3_mtl23ls_v2.safetensors", "s3gen.pt", "grapheme_mtl_merged_expanded_v1.json"),
}
SPEECH_VOCAB = 6561  # tokens at or above this are control tokens, not speech
TOKEN_SAMPLES = 960  # one speech token is 40 ms of 24 kHz audio
MELS_PER_TOKEN = 2  # S3Gen's mel frames per speech token
LOOKAHEAD_TOKENS = 3  # S3Gen's flow needs 3 tokens past the last one it renders (pre_lookahead_len)
FIRST_CHUNK_TOKENS = 5  # 200 ms of audio: the first chunk is small so first audio comes early
CHUNK_TOKENS = 25  # then 1 s per vocoder pass
CONTEXT_TOKENS = 8  # tokens re-read before each chunk so its start joins the previous one


class ChatterboxEngine(Engine):
    name = "chatterbox"
    supports_cloning = True

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.supports_tags = settings.model == "turbo"
        self.tts = None
        self._torch = None

    @property
    def model(self) -> str:
        return f"chatterbox-{self._settings.model}"

    def load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch

        self._torch = torch
        weights = self._weights_dir()
        self.device = resolve_device(self._settings.device, torch)
        self.tts = model_class(self._settings.model).from_local(weights, self.device)
        self._dtype = self._precision(torch)
        if self._dtype != torch.float32:
            self.tts.t3.to(dtype=self._dtype)
        if not self._settings.watermark:
            import perth

            self.tts.watermarker = perth.DummyWatermarker()
        self.sample_rate = self.tts.sr
        self.loaded = True

    def _weights_dir(self) -> Path:
        weights = self._settings.weights_dir
        if weights is None:
            raise RuntimeError("TTS_WEIGHTS_DIR is not set: point it at the Chatterbox weight folder")
        missing = [name for name in WEIGHT_FILES[self._settings.model] if not (weights / name).is_file()]
        if missing:
            raise RuntimeError(f"{weights} lacks the {self._settings.model} weights: {', '.join(missing)}")
        return weights

    def _precision(self, torch) -> Any:
        if not self.device.startswith("cuda"):
            return torch.float32  # half precision on the CPU is slower, not faster
        if self._settings.precision == "bfloat16" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return getattr(torch, self._settings.precision)

    def worker_context(self) -> contextlib.AbstractContextManager:
        import torch

        return torch.inference_mode()

    def memory(self) -> dict[str, int] | None:
        torch = self._torch
        if torch is None or not self.device.startswith("cuda"):
            return None
        free, total = torch.cuda.mem_get_info(torch.device(self.device))
        return {"free": int(free), "total": int(total), "allocated": int(torch.cuda.memory_allocated(self.device))}

    def builtin_voice(self) -> Any:
        return self._cast(self.tts.conds) if self.tts.conds is not None else None

    def prepare_voice(self, reference: Path) -> Any:
        previous = self.tts.conds
        try:
            self.tts.prepare_conditionals(str(reference), exaggeration=self._settings.default_exaggeration)
            return self._cast(self.tts.conds)
        finally:
            self.tts.conds = previous  # the model's own default voice stays as loaded

    def _cast(self, conds: Any) -> Any:
        conds.t3 = conds.t3.to(device=self.device, dtype=self._dtype)
        return conds

    def stream(self, sentences: list[str], voice: Any, options: SynthesisOptions) -> Iterator[np.ndarray | None]:
        if voice is None:
            raise RuntimeError("this voice has no conditionals: upload reference audio or mount conds.pt")
        if self._settings.model == "turbo":
            for index, sentence in enumerate(sentences):
                yield from self._turbo_sentence(sentence, voice, first=index == 0)
        else:
            for sentence in sentences:
                yield self._generate(sentence, voice, options)

    def _generate(self, sentence: str, voice: Any, options: SynthesisOptions) -> np.ndarray:
        self.tts.conds = voice  # generate() reads the model's conds; one thread, so no race
        kwargs = {"exaggeration": options.exaggeration, "cfg_weight": options.cfg_weight}
        if self._settings.model == "multilingual":
            kwargs["language_id"] = options.language
        return self.tts.generate(sentence, **kwargs).squeeze(0).float().cpu().numpy()

    def _turbo_sentence(self, sentence: str, voice: Any, *, first: bool) -> Iterator[np.ndarray | None]:
        from chatterbox.tts_turbo import punc_norm

        tokens = self.tts.tokenizer(punc_norm(sentence), return_tensors="pt", padding=True, truncation=True)
        vocoder = ChunkVocoder(self.tts, voice.gen, fade_in=first)
        speech: list[int] = []
        for token in turbo_tokens(
            self.tts.t3, voice.t3, tokens.input_ids.to(self.device), self._settings.max_speech_tokens
        ):
            if token < SPEECH_VOCAB:
                speech.append(token)
            yield vocoder.push(speech) if vocoder.ready(len(speech)) else None
        yield vocoder.finish(speech)


def model_class(name: str):
    if name == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS

        return ChatterboxTurboTTS
    if name == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS

        return ChatterboxMultilingualTTS
    from chatterbox.tts import ChatterboxTTS

    return ChatterboxTTS


def resolve_device(device: str, torch) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"TTS_DEVICE={device} but CUDA is not available on this host")
    return device


def turbo_tokens(t3, t3_cond, text_tokens, max_tokens: int, *, temperature: float = 0.8) -> Iterator[int]:
    """T3 Turbo's sampling loop (`T3.inference_turbo` in chatterbox 0.1.7), one speech token per step."""
    import torch
    import torch.nn.functional as F
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList(
        [
            TemperatureLogitsWarper(temperature),
            TopKLogitsWarper(1000),
            TopPLogitsWarper(0.95),
            RepetitionPenaltyLogitsProcessor(1.2),
        ]
    )
    start = t3.hp.start_speech_token * torch.ones_like(text_tokens[:, :1])
    embeds, _ = t3.prepare_input_embeds(t3_cond=t3_cond, text_tokens=text_tokens, speech_tokens=start, cfg_weight=0.0)
    out = t3.tfmr(inputs_embeds=embeds, use_cache=True)
    generated = start
    for _ in range(max_tokens):
        logits = processors(generated, t3.speech_head(out[0][:, -1:])[:, -1, :])
        if torch.all(logits == -float("inf")):
            return
        token = torch.multinomial(F.softmax(logits.float(), dim=-1), num_samples=1)
        if int(token) == t3.hp.stop_speech_token:
            return
        generated = torch.cat([generated, token], dim=1)
        yield int(token)
        out = t3.tfmr(inputs_embeds=t3.speech_emb(token), past_key_values=out.past_key_values, use_cache=True)


class ChunkVocoder:
    """Turns a growing list of speech tokens into audio in chunks (S3Gen flow + HiFT vocoder)."""

    def __init__(self, tts, ref_dict: dict, *, fade_in: bool) -> None:
        self._tts = tts
        self._ref = ref_dict
        self._fade_in = fade_in
        self.emitted = 0  # tokens already turned into audio
        self._samples_out = 0  # samples already sent (HiFT's output is a little shorter than 960 per token)

    def ready(self, n_tokens: int) -> bool:
        wanted = FIRST_CHUNK_TOKENS if self.emitted == 0 else CHUNK_TOKENS
        return n_tokens - LOOKAHEAD_TOKENS - self.emitted >= wanted

    def push(self, tokens: list[int]) -> np.ndarray:
        return self._vocode(tokens, final=False)

    def finish(self, tokens: list[int]) -> np.ndarray:
        from chatterbox.models.s3gen.const import S3GEN_SIL

        return self._vocode([*tokens, S3GEN_SIL, S3GEN_SIL, S3GEN_SIL], final=True)

    def _vocode(self, tokens: list[int], *, final: bool) -> np.ndarray:
        import torch

        s3gen = self._tts.s3gen
        start = max(0, self.emitted - CONTEXT_TOKENS)
        upto = len(tokens) if final else len(tokens) - LOOKAHEAD_TOKENS
        if upto <= self.emitted:
            return np.zeros(0, dtype=np.float32)
        window = torch.tensor([tokens[start:]], dtype=torch.long, device=s3gen.device)
        # finalize=False would drop the look-ahead tokens' frames itself, but Turbo's meanflow sizes its
        # noise for all tokens and fails; rendering all of them and dropping those frames is the same.
        mels = s3gen.flow_inference(window, ref_dict=self._ref, finalize=True)
        if not final:
            mels = mels[:, :, : -LOOKAHEAD_TOKENS * MELS_PER_TOKEN]
        wav, _ = s3gen.hift_inference(mels.to(dtype=s3gen.dtype), None)
        wav = wav[0, self._samples_out - start * TOKEN_SAMPLES :]  # the context's audio was sent already
        if self.emitted == 0 and self._fade_in:
            fade = s3gen.trim_fade[: wav.shape[0]]
            wav[: fade.shape[0]] *= fade  # the library's cure for spill-over from the reference clip
        self.emitted = upto
        self._samples_out += wav.shape[0]
        audio = wav.float().cpu().numpy()
        return self._tts.watermarker.apply_watermark(audio, sample_rate=self._tts.sr).astype(np.float32)
