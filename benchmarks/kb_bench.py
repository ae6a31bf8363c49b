"""Policy questions benchmark: index build time, query latency and answer quality.

    .venv/bin/python benchmarks/kb_bench.py [--synthetic 1000] [--rounds 20]

Prints Markdown (the figures in docs/benchmarks.md come from here):

- index build time on the shipped base (cold: including jieba's dictionary; warm) and on a
  synthetic base of N documents (seeded, reproducible), and the time to replace one
  document in it (what an upload costs);
- query latency p50/p95 of the whole decision (`answering.ask`: analysis, BM25, confidence)
  on both bases, over the development and held-out questions, typos and bad input;
- recall@1, recall@3 and MRR on tests/data/qa-dev.json and qa-extra.json, and the
  threshold calibrated on the development set.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.kb import answering, documents, evaluation  # noqa: E402
from services.kb.analysis import default_analyzer  # noqa: E402
from services.kb.index import KnowledgeBase, Source  # noqa: E402

DATA = ROOT / "tests" / "data"
EXTRA_QUERIES = [
    "How do I get oxigen?",
    "wat time is the daily chekin reminder",
    "oxygen 怎么申请",
    "",
    "x",
    "😀😀😀",
    "' OR 1=1; --",
    "<script>alert(1)</script>",
    "How do I raise an SOS? " + "blah " * 700,
]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def synthetic(count: int, seed: int = 7) -> list[documents.Document]:
    """`count` documents (half Chinese, half English) of 4-8 sections each, made from the
    shipped sentences with a fifth of the words replaced from a pool of made-up words."""
    rng = random.Random(seed)
    sentences: dict[str, list[str]] = {"en": [], "zh-Hans": []}
    for document in documents.shipped():
        for section in document.sections:
            splitter = "。" if document.meta.language == "zh-Hans" else ". "
            parts = [p.strip() for p in section.body.replace("\n", " ").split(splitter)]
            sentences[document.meta.language] += [p for p in parts if len(p) > 8]
    letters = "abcdefghijklmnopqrstuvwxyz"
    pool = ["".join(rng.choices(letters, k=rng.randint(4, 10))) for _ in range(20000)]
    hanzi = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    made: list[documents.Document] = []
    for n in range(count):
        language = "zh-Hans" if n % 2 else "en"
        lines = [
            "---",
            f"id: synthetic-{n:04d}",
            f"language: {language}",
            f"title: Synthetic document {n}",
            "issuer: Benchmark",
            "date: 2024-01-01",
            "---",
        ]
        for s in range(rng.randint(4, 8)):
            lines.append(f"## Section {s} of document {n} {{#s{s}}}")
            body = []
            for sentence in rng.sample(sentences[language], k=rng.randint(3, 6)):
                if language == "en":
                    words = [
                        rng.choice(pool) if rng.random() < 0.2 else w for w in sentence.split()
                    ]
                    body.append(" ".join(words) + ".")
                else:
                    chars = [rng.choice(hanzi) if rng.random() < 0.2 else c for c in sentence]
                    body.append("".join(chars) + "。")
            lines += ["", " ".join(body), ""]
        made.append(documents.parse("\n".join(lines)))
    return made


def timed_build(docs: list[documents.Document]) -> tuple[KnowledgeBase, float]:
    kb = KnowledgeBase()
    start = time.perf_counter()
    kb.load(Source(d) for d in docs)
    return kb, time.perf_counter() - start


def latencies(kb: KnowledgeBase, queries: list[str], rounds: int) -> tuple[float, float]:
    for query in queries:  # warm the caches once
        answering.ask(kb, query)
    samples = []
    for _ in range(rounds):
        for query in queries:
            start = time.perf_counter()
            answering.ask(kb, query)
            samples.append((time.perf_counter() - start) * 1000)
    return percentile(samples, 0.5), percentile(samples, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=1000, help="documents (default 1000)")
    parser.add_argument("--rounds", type=int, default=20, help="passes over the questions")
    args = parser.parse_args()

    dev = evaluation.load(DATA / "qa-dev.json")
    extra = evaluation.load(DATA / "qa-extra.json")
    queries = [q.text for q in dev + extra] + EXTRA_QUERIES

    start = time.perf_counter()
    default_analyzer().segmenter  # noqa: B018  (jieba loads its dictionary here)
    jieba_load = time.perf_counter() - start
    shipped = list(documents.shipped())
    kb, cold = timed_build(shipped)
    cold += jieba_load
    kb, warm = timed_build(shipped)
    p50, p95 = latencies(kb, queries, args.rounds)

    made = synthetic(args.synthetic)
    big, big_build = timed_build(shipped + made)
    big_p50, big_p95 = latencies(big, queries, args.rounds)
    changed = documents.parse(made[0].text.replace("Synthetic document 0", "Changed document"))
    start = time.perf_counter()
    big.replace(changed.meta.doc_id, [Source(changed, 2, "upload")])
    update = time.perf_counter() - start

    print("| base | documents | topics | build | p50 | p95 |")
    print("|---|---|---|---|---|---|")
    print(
        f"| shipped | {len(shipped)} | {kb.size} | {warm * 1000:.0f} ms "
        f"(cold, with jieba's dictionary: {cold:.2f} s) | {p50:.2f} ms | {p95:.2f} ms |"
    )
    print(
        f"| synthetic | {len(shipped) + len(made)} | {big.size} | {big_build:.2f} s | "
        f"{big_p50:.2f} ms | {big_p95:.2f} ms |"
    )
    print(f"\nReplacing one document in the synthetic base (an upload): {update * 1000:.0f} ms")
    print(f"Queries: {len(queries)} questions x {args.rounds} rounds per base.\n")
    print(
        "| question set | in scope | out of scope | recall@1 | recall@3 | MRR | answered right"
        " | out of scope rejected |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, questions in (("qa-dev.json", dev), ("qa-extra.json (held out)", extra)):
        report = evaluation.evaluate(kb, questions)
        print(
            f"| {name} | {len(report.in_scope)} | {len(report.out_of_scope)} | "
            f"{report.recall_at(1):.3f} | {report.recall_at(3):.3f} | {report.mrr:.3f} | "
            f"{report.answered_correctly:.3f} | {report.rejected:.3f} |"
        )
    print(
        f"\nThreshold calibrated on qa-dev.json: {evaluation.calibrate(kb, dev)} "
        f"(in use: {answering.CONFIDENCE_THRESHOLD})"
    )


if __name__ == "__main__":
    main()
