"""Side-by-side training-speed benchmarks: jaxnet against hand-written JAX and its peers.

Each case (``small``, ``wide``, ``cnn``) trains the same net on the same data with the same
optimizer in every implementation, in one process, alternating implementations over several
rounds; the tables report medians and ratios against the hand-written pure-JAX baseline of the
same run. Peers (Flax linen and NNX, Haiku, Equinox, PyTorch) are measured when installed and
skipped otherwise; stax ships with JAX.

Run (about 10 minutes on 2 CPU cores; ``--quick`` takes about one)::

    python -m experiments.benchmarks                       # writes docs/benchmarks.md and
                                                           # experiments/benchmarks/results.json
    python -m experiments.benchmarks --cases small --quick --out /tmp/bench

See docs/benchmarks.md for what each column means.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

from experiments.benchmarks import cases, report, suite

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "benchmarks.md"
JSON = ROOT / "experiments" / "benchmarks" / "results.json"


def _names(text: str, known: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown {what} {unknown[0]!r} (known: {', '.join(known)})")
    return names


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the suite, write its table and JSON, and return the results."""
    parser = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--cases", default="small,wide,cnn", help="comma-separated case names")
    parser.add_argument(
        "--impls",
        default=",".join(i.key for i in suite.IMPLS),
        help="comma-separated implementations (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=None, help="rounds (default 7; quick 2)")
    parser.add_argument(
        "--quick", action="store_true", help="short measurements, to check the tooling"
    )
    parser.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="write benchmarks.md and results.json into this folder instead",
    )
    args = parser.parse_args(argv)
    keys = _names(args.impls, tuple(i.key for i in suite.IMPLS), "implementation")
    impls = [i for i in suite.IMPLS if i.key in keys]
    settings = suite.Settings(
        repeats=args.repeats or (2 if args.quick else 7),
        target=0.05 if args.quick else 0.5,
        fit_epochs=1 if args.quick else 3,
    )
    chosen = [cases.make(name) for name in _names(args.cases, cases.CASES, "case")]
    results = suite.run(chosen, impls, settings, log=lambda line: print(line, flush=True))
    if args.out is None:
        md_path, json_path = DOCS, JSON
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        md_path, json_path = args.out / "benchmarks.md", args.out / "results.json"
    report.write_markdown(md_path, results)
    report.write_json(json_path, results)
    print(report.markdown(results))
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
