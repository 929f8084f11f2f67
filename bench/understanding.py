"""How well the offline responder understands callers: accuracy, confusion between intents, time per turn.

    .venv/bin/python bench/understanding.py            # both test sets (tests/voice/understanding)
    .venv/bin/python bench/understanding.py --wrong    # and every line it gets wrong

It runs the understanding test sets through the responder exactly as the accuracy test does (the same
agents, the same day), on the platform's embedding engine, and prints per set: accuracy, a confusion table
by kind of behaviour (expected -> got), and the responder's milliseconds per caller turn (p50/p95, the
caller's words embedded on first sight as in a call, the agent's examples cached). It asserts nothing.
"""

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def kind(label: str) -> str:
    return label.split(" ")[0].split(":")[0]


def report(name: str, outcomes, wrong: bool) -> None:
    good = sum(o.ok for o in outcomes)
    print(f"\n{name}: accuracy {good / len(outcomes):.3f} ({good}/{len(outcomes)})")
    confusion = Counter((kind(o.expected[0]), kind(o.got)) for o in outcomes if not o.ok)
    if confusion:
        print("  wrong, by expected -> got:")
        for (expected, got), count in confusion.most_common():
            print(f"    {expected:>12} -> {got:<12} {count}")
    times = sorted(o.seconds * 1000 for o in outcomes)
    print(f"  ms per turn: p50 {statistics.median(times):.1f}, p95 {times[int(len(times) * 0.95) - 1]:.1f}")
    if wrong:
        for o in outcomes:
            if not o.ok:
                print(f"    [{o.agent}] {o.said!r}: expected {' or '.join(o.expected)}, got {o.got}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wrong", action="store_true", help="list every line answered wrongly")
    args = parser.parse_args()
    from core import embeddings

    started = time.perf_counter()
    embeddings.warm_up(background=False)
    print(f"embedding engine {embeddings.MODEL_ID}: loaded and warm in {time.perf_counter() - started:.2f} s")
    from tests.voice.understanding.cases import CASES
    from tests.voice.understanding.harness import run_all
    from tests.voice.understanding.heldout import HELDOUT_CASES

    report("tuning set (tests/voice/understanding/cases.py)", run_all(CASES), args.wrong)
    report("held-out set (tests/voice/understanding/heldout.py)", run_all(HELDOUT_CASES), args.wrong)


if __name__ == "__main__":
    main()
