"""Benchmark of the knowledge base: embedding, snapshot loading, search, and retrieval quality.

    .venv/bin/python bench/knowledge.py [--sizes 1000 10000] [--queries 200] [--embed-sample 24]
                                         [--database-url sqlite|postgres://...]

Prints, for an agent of each size (chunks stored in the default vector store, KnowledgeChunk rows with
float16 vectors): the time to load its snapshot (rows, vectors, BM25 index) and the memory it holds, the
time of a call start that finds it cached, and the milliseconds per caller turn of a search by meaning
(cosine over the matrix), by words (BM25) and both (the hybrid the calls use). Before that, the time to
embed one chunk and one caller's question with the platform's model (core.embeddings, one thread), and
after it the recall of each ranking on the labelled set of tests/knowledge/corpus.py, and where pgvector
would take over from ranking in process. The stored chunks' vectors are random unit vectors and their text
is drawn from the labelled set's sentences and a vocabulary: embedding 10,000 real chunks would take most
of an hour on one core, and neither loading nor ranking depends on what the vectors say.

The database is a temporary SQLite file by default, or PostgreSQL with --database-url (created if missing
and migrated; the bench's rows are deleted at the end). It asserts nothing about time.
"""

import argparse
import random
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TURN_BUDGET_MS = 20.0  # what retrieval may add to a caller's turn before it is felt (the LLM takes ~500 ms)
BUILD_BUDGET_S = 2.0  # what loading an agent's changed knowledge may add to the start of its next call
CACHED_PASSAGES = 100_000  # agents.knowledge.snapshot.CACHE_PASSAGES


def setup_django(database_url: str) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import gateway  # the gateway benchmark's set-up: the same database choices

    gateway.setup_django(database_url, prefix="knowledge-bench-")


# --- synthetic knowledge -----------------------------------------------------------------------------------


def sentences() -> list[str]:
    from agents.knowledge.chunking import sentences as split
    from tests.knowledge.corpus import DOCUMENTS

    found = [s for _, text in DOCUMENTS for line in text.splitlines() for s in split(line) if len(s) > 20]
    return sorted(set(found))


def chunk_texts(count: int, rng: random.Random) -> list[str]:
    """`count` chunk texts of 500-800 characters: labelled sentences with words of a 5,000-word vocabulary."""
    base = sentences()
    vocabulary = [f"{a}{b}" for a in ("al", "be", "co", "de", "fa", "go", "hi", "ka", "lu", "mo") for b in range(500)]
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < rng.randint(500, 780):
            parts.append(rng.choice(base) if rng.random() < 0.5 else " ".join(rng.choices(vocabulary, k=8)) + ".")
        texts.append(" ".join(parts)[:800])
    return texts


def unit_rows(count: int, rng: np.random.Generator) -> np.ndarray:
    rows = rng.standard_normal((count, 384)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def store_agent(size: int, per_document: int = 100):
    """A tenant and an agent with `size` embedded chunks in documents of `per_document` chunks."""
    from agents.knowledge.embedding import content_hash
    from agents.models import Agent, KnowledgeChunk, KnowledgeDocument
    from core.embeddings import MODEL_ID, to_bytes
    from tenants.models import Tenant

    rng, vectors_rng = random.Random(size), np.random.default_rng(size)  # noqa: S311 - synthetic data
    tenant = Tenant.objects.create(name=f"Knowledge bench {size}", slug=f"kb-bench-{uuid.uuid4().hex[:8]}")
    agent = Agent.objects.create(tenant=tenant, name="Bench", system_prompt="Answer from the knowledge base.")
    texts, vectors = chunk_texts(size, rng), unit_rows(size, vectors_rng)
    for start in range(0, size, per_document):
        part = texts[start : start + per_document]
        content = "\n\n".join(part)
        title = f"Document {start // per_document + 1}"
        document = KnowledgeDocument.objects.create(
            tenant=tenant, agent=agent, title=title, content=content, status="ready", chunks_total=len(part),
            chunks_embedded=len(part), chunks_hash=content_hash(title, content), model_id=MODEL_ID,
        )  # fmt: skip
        KnowledgeChunk.objects.bulk_create(
            [
                KnowledgeChunk(
                    tenant=tenant,
                    agent=agent,
                    document=document,
                    position=i,
                    text=text,
                    vector=to_bytes(vectors[start + i : start + i + 1]),
                    model_id=MODEL_ID,
                )
                for i, text in enumerate(part)
            ],
            batch_size=500,
        )
    return tenant, agent


# --- measurements ------------------------------------------------------------------------------------------


def embedding_cost(sample: int) -> tuple[float, float]:
    """(seconds per stored chunk, seconds per caller's question) on one thread of the platform's model."""
    from agents.knowledge.embedding import passage_text
    from core.embeddings import embedder
    from tests.knowledge.corpus import QUESTIONS

    model = embedder()
    model.queries(["warm up"])
    texts = [passage_text("Price list", "Cleaning", text) for text in chunk_texts(sample, random.Random(1))]  # noqa: S311
    started = time.perf_counter()
    for start in range(0, len(texts), 8):  # the embedding task's batches
        model.passages(texts[start : start + 8])
    per_chunk = (time.perf_counter() - started) / len(texts)
    questions = [q for q, _ in QUESTIONS]
    started = time.perf_counter()
    for question in questions:
        model.queries([question])
    return per_chunk, (time.perf_counter() - started) / len(questions)


def timed_ms(function, runs) -> list[float]:
    times = []
    for argument in runs:
        started = time.perf_counter()
        function(*argument)
        times.append((time.perf_counter() - started) * 1000)
    return times


def memory_of_a_build(tenant_id, agent_id) -> tuple[int, int]:
    """(bytes a snapshot and its index hold, bytes at the peak of building them)."""
    from agents.knowledge import snapshot

    snapshot.forget()
    tracemalloc.start()
    knowledge = snapshot.snapshot(tenant_id=tenant_id, agent_id=agent_id)
    knowledge.index  # noqa: B018 - built here, to be measured
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return held, peak


def measure_size(size: int, queries: int) -> dict:
    from agents.knowledge import snapshot
    from agents.knowledge.search import _top
    from core.embeddings import embedder
    from tests.knowledge.corpus import QUESTIONS

    started = time.perf_counter()
    tenant, agent = store_agent(size)
    stored = time.perf_counter() - started
    snapshot.forget()
    started = time.perf_counter()
    knowledge = snapshot.snapshot(tenant_id=tenant.pk, agent_id=agent.pk)
    loaded = time.perf_counter() - started
    index = knowledge.index
    indexed = time.perf_counter() - started
    started = time.perf_counter()
    assert snapshot.snapshot(tenant_id=tenant.pk, agent_id=agent.pk) is knowledge
    cached_ms = (time.perf_counter() - started) * 1000
    held, peak = memory_of_a_build(tenant.pk, agent.pk)  # a second build, traced (tracing slows it down)

    questions = [q for q, _ in QUESTIONS]
    vectors = embedder().queries(questions)
    runs = [(questions[i % len(questions)], vectors[i % len(questions)]) for i in range(queries)]
    for text, vector in runs[:20]:  # warm-up, untimed
        index.search(text, vector, 3)
    by_meaning = timed_ms(lambda text, vector: _top(index.similarities(vector), 3), runs)
    by_words = timed_ms(lambda text, vector: index.search(text, None, 3), runs)
    hybrid = timed_ms(lambda text, vector: index.search(text, vector, 3), runs)
    tenant.delete()
    return {
        "size": size,
        "store_s": stored,
        "load_s": loaded,
        "index_s": indexed - loaded,
        "held_mb": held / 1e6,
        "peak_mb": peak / 1e6,
        "matrix_mb": knowledge.matrix.nbytes / 1e6,
        "cached_ms": cached_ms,
        "meaning": by_meaning,
        "words": by_words,
        "hybrid": hybrid,
    }


def quality() -> list[tuple[str, int, int, int, int, int]]:
    """(ranking, right first, right in three, answerable, unrelated finding nothing, unrelated) on the labelled set."""
    from agents.knowledge.chunking import chunk
    from agents.knowledge.embedding import passage_text
    from agents.knowledge.search import HybridIndex, Passage, Source
    from core.embeddings import embedder
    from tests.knowledge.corpus import DOCUMENTS, QUESTIONS

    passages = [
        Passage(str(n), Source(str(i), title, d.section, d.page), d.position, d.text, d.question, d.answer)
        for i, (title, content) in enumerate(DOCUMENTS)
        for n, d in enumerate(chunk(content))
    ]
    model = embedder()
    matrix = model.passages([passage_text(p.source.title, p.source.section, p.text) for p in passages])
    vectors = model.queries([q for q, _ in QUESTIONS])
    rankings = {
        "words (BM25)": (HybridIndex(passages, matrix), False, 0.81),
        "meaning (cosine, no floor)": (HybridIndex(passages, matrix, min_similarity=-1.0, weight=1.0), True, None),
        "reciprocal-rank fusion": (HybridIndex(passages, matrix, fusion="rrf"), True, 0.81),
        "weighted sum 0.9 (default)": (HybridIndex(passages, matrix), True, 0.81),
    }
    rows = []
    for name, (index, use_vector, _) in rankings.items():
        first = three = nothing = 0
        for (question, phrase), vector in zip(QUESTIONS, vectors, strict=True):
            found = [hit.text for hit in index.search(question, vector if use_vector else None, 3)]
            if phrase is None:
                nothing += not found
            else:
                first += bool(found) and phrase in found[0]
                three += any(phrase in text for text in found)
        answerable = sum(p is not None for _, p in QUESTIONS)
        rows.append((name, first, three, answerable, nothing, len(QUESTIONS) - answerable))
    return rows


# --- report ------------------------------------------------------------------------------------------------


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    return f"{statistics.mean(times):7.2f} {ordered[int(len(ordered) * 0.95) - 1]:7.2f}"


def report(per_chunk: float, per_question: float, results: list[dict], rows: list[tuple]) -> None:
    print(f"\nembedding (one thread): {per_chunk * 1000:.0f} ms per chunk of 500-800 characters, "
          f"{per_question * 1000:.1f} ms per caller's question")  # fmt: skip
    for result in results:
        print(f"  {result['size']:>6,} chunks: about {result['size'] * per_chunk / 60:.0f} minutes to embed")
    print("\nsnapshot (once per revision, shared by the agent's calls)")
    print(f"{'chunks':>8} {'load s':>8} {'index s':>8} {'held MB':>8} {'peak MB':>8} {'matrix MB':>9} {'cached ms':>9}")
    for r in results:
        print(f"{r['size']:>8,} {r['load_s']:>8.2f} {r['index_s']:>8.2f} {r['held_mb']:>8.1f} {r['peak_mb']:>8.1f} "
              f"{r['matrix_mb']:>9.1f} {r['cached_ms']:>9.2f}")  # fmt: skip
    print("\nsearch per caller's turn, ms (mean, p95), k=3")
    print(f"{'chunks':>8} {'meaning':>15} {'words':>15} {'hybrid':>15}")
    for r in results:
        print(f"{r['size']:>8,} {summary(r['meaning'])} {summary(r['words'])} {summary(r['hybrid'])}")
    print("\nretrieval on the labelled set (tests/knowledge/corpus.py)")
    print(f"{'ranking':<28} {'right first':>12} {'in top 3':>10} {'unrelated: nothing':>19}")
    for name, first, three, answerable, nothing, unrelated in rows:
        print(f"{name:<28} {first:>6}/{answerable:<5} {three:>4}/{answerable:<5} {nothing:>12}/{unrelated}")
    largest = results[-1]
    search_ms = statistics.mean(largest["hybrid"]) / largest["size"]
    build_s = (largest["load_s"] + largest["index_s"]) / largest["size"]
    held_kb = largest["held_mb"] * 1000 / largest["size"]
    print(
        "\nwhere pgvector would take over (from the largest size, linearly):\n"
        f"  a hybrid search costs {search_ms * 1e3:.2f} µs per chunk: {TURN_BUDGET_MS:.0f} ms per turn at about "
        f"{TURN_BUDGET_MS / search_ms:,.0f} chunks per agent;\n"
        f"  a snapshot costs {build_s * 1e6:.0f} µs per chunk to build at the first call start after a change: "
        f"{BUILD_BUDGET_S:.0f} s at about {BUILD_BUDGET_S / build_s:,.0f} chunks;\n"
        f"  it holds {held_kb:.1f} kB per chunk: the cache's {CACHED_PASSAGES:,} passages are about "
        f"{CACHED_PASSAGES * held_kb / 1000:,.0f} MB per process."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embed-sample", type=int, default=24, help="chunks embedded to time the model")
    parser.add_argument("--database-url", default="sqlite", help="sqlite (a temporary file) or postgres://...")
    args = parser.parse_args()
    setup_django(args.database_url)
    per_chunk, per_question = embedding_cost(args.embed_sample)
    results = [measure_size(size, args.queries) for size in args.sizes]
    report(per_chunk, per_question, results, quality())


if __name__ == "__main__":
    main()
