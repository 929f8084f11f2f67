"""Chatterbox Turbo weights with random values, in exactly the layout `from_local` reads.

T3's GPT-2 backbone is shrunk (2 layers, 64 wide) by overriding the library's own config entry
while the weights are built and loaded; VoiceEncoder and S3Gen keep their real architecture. So
the node's loader and streaming code run the library's real code path on a CPU, without weights.
"""

from pathlib import Path

TINY_GPT2 = {"n_embd": 64, "hidden_size": 64, "n_head": 2, "n_layer": 2, "n_ctx": 1024, "n_positions": 1024}


def tiny_gpt2_config() -> dict:
    from chatterbox.models.t3.llama_configs import GPT2_MEDIUM_CONFIG

    return {**GPT2_MEDIUM_CONFIG, **TINY_GPT2}


def _tokenizer(folder: Path) -> None:
    """A small GPT-2 style byte-level BPE tokenizer saved where AutoTokenizer.from_pretrained looks."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(["Hello there. How can I help you today? [laugh] [chuckle] One two three."], trainer)
    eot = "<|endoftext|>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eot, bos_token=eot)
    fast.save_pretrained(folder)


def build_turbo_weights(folder: Path) -> None:
    """ve.safetensors, t3_turbo_v1.safetensors, s3gen_meanflow.safetensors and a tokenizer."""
    import torch
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder
    from safetensors.torch import save_file

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(VoiceEncoder().state_dict(), folder / "ve.safetensors")
    hp = T3Config(text_tokens_dict_size=50276)  # the same hyper-parameters from_local sets for Turbo
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    save_file(_contiguous(T3(hp).state_dict()), folder / "t3_turbo_v1.safetensors")
    save_file(_contiguous(S3Gen(meanflow=True).state_dict()), folder / "s3gen_meanflow.safetensors")
    _tokenizer(folder)


def _contiguous(state: dict) -> dict:
    # safetensors refuses tensors that share memory (tied weights); copies are what a checkpoint holds
    return {k: v.detach().clone().contiguous() for k, v in state.items()}
