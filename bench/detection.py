"""Detection accuracy on the labelled corpus, per class: what leaks and what cries wolf.

    .venv/bin/python bench/detection.py              # per-class table, then per detector
    .venv/bin/python bench/detection.py --cases      # also every case that is wrong
    .venv/bin/python bench/detection.py --engine re  # one pattern engine (default: the best)

The corpus is tests/corpus/detection_corpus.py: leak classes (must be found), false-alarm
classes (look-alikes that must stay silent) and controls (ordinary school mail). Counted per
case and detector: a detector that fires where the label expects it is a true positive (a
`counts` label also needs that many hits), one that fires where it is not expected a false
positive, one that is expected and silent a false negative. The inspector is built as
`gateway serve` builds it, with the shipped policy's term lists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.inspect import Inspector, build_inspector  # noqa: E402
from tests import factories as h  # noqa: E402
from tests.corpus import detection_corpus as corpus  # noqa: E402

Score = tuple[int, int, int]  # true positives, false positives, false negatives


def judge(inspector: Inspector, case: corpus.Case) -> dict[str, str]:
    """detector → "tp" | "fp" | "fn" for every detector that fired or was expected."""
    hits: dict[str, int] = {}
    for f in inspector.inspect(case.build()).findings:
        hits[f.detector] = hits.get(f.detector, 0) + f.count
    out = {}
    for det in set(hits) | case.expected:
        if det not in case.expected:
            out[det] = "fp"
        elif hits.get(det, 0) >= max(case.counts.get(det, 1), 1):
            out[det] = "tp"
        else:
            out[det] = "fn"
    return out


def _add(score: list[int], verdicts: Iterable[str]) -> None:
    for v in verdicts:
        score[("tp", "fp", "fn").index(v)] += 1


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "-"


def run(inspector: Inspector, show_cases: bool = False) -> dict[str, Score]:
    """Print the tables; return the per-class scores."""
    by_class: dict[str, Score] = {}
    by_detector: dict[str, list[int]] = {}
    wrong: list[str] = []
    print(f"{'class':<28}{'kind':<12}{'cases':>6}{'right':>6}{'TP':>5}{'FP':>5}{'FN':>5}"
          f"{'precision':>11}{'recall':>8}")
    total = [0, 0, 0]
    cases = right = 0
    for cls in corpus.all_classes():
        score, ok = [0, 0, 0], 0
        for case in cls.cases:
            verdicts = judge(inspector, case)
            _add(score, verdicts.values())
            for det, v in verdicts.items():
                _add(by_detector.setdefault(det, [0, 0, 0]), [v])
            if all(v == "tp" for v in verdicts.values()):
                ok += 1
            else:
                bad = ", ".join(f"{d} {v}" for d, v in sorted(verdicts.items()) if v != "tp")
                wrong.append(f"  {cls.name}/{case.id}: {bad}")
        tp, fp, fn = score
        by_class[cls.name] = (tp, fp, fn)
        print(f"{cls.name:<28}{cls.kind:<12}{len(cls.cases):>6}{ok:>6}{tp:>5}{fp:>5}{fn:>5}"
              f"{_ratio(tp, tp + fp):>11}{_ratio(tp, tp + fn):>8}")
        total = [a + b for a, b in zip(total, score, strict=True)]
        cases += len(cls.cases)
        right += ok
    tp, fp, fn = total
    print(f"{'all':<28}{'':<12}{cases:>6}{right:>6}{tp:>5}{fp:>5}{fn:>5}"
          f"{_ratio(tp, tp + fp):>11}{_ratio(tp, tp + fn):>8}")
    print()
    print(f"{'detector':<28}{'TP':>5}{'FP':>5}{'FN':>5}{'precision':>11}{'recall':>8}")
    for det in sorted(by_detector):
        tp, fp, fn = by_detector[det]
        print(f"{det:<28}{tp:>5}{fp:>5}{fn:>5}{_ratio(tp, tp + fp):>11}"
              f"{_ratio(tp, tp + fn):>8}")
    if show_cases and wrong:
        print("\nwrong cases:")
        print("\n".join(wrong))
    return by_class


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", action="store_true", help="list every wrong case")
    parser.add_argument("--engine", choices=("hyperscan", "re2", "re"), default=None)
    args = parser.parse_args()
    inspector = build_inspector(h.make_settings(), h.FakeDirectory(),
                                corpus.shipped_lexicons(), engine=args.engine)
    print(f"detection corpus, engine {inspector.engine}\n")
    run(inspector, args.cases)


if __name__ == "__main__":
    main()
