"""Counts the suite's assertions, per file, in the work tree or in a git revision.

An assertion is an ``assert`` statement, a call of a function whose name starts with ``assert``
(``np.testing.assert_allclose``, ``_assert_same_run``, ``chex.assert_shape``), or a
``pytest.raises`` / ``pytest.warns`` / ``pytest.fail`` call; in ``tests/**/*.py`` and in the
executed Python blocks of ``docs/**/*.md`` and ``README.md``. Speeding the suite up may merge
cases, never drop a check: compare before and after with::

    python -m tests.assertion_count --compare d7a4196
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.test_docs import EXECUTED_LANGUAGES, fenced_blocks

ROOT = Path(__file__).resolve().parents[1]
_PYTEST_CHECKS = {"raises", "warns", "fail"}


def assertions(source: str) -> int:
    """The assertions in one Python source text."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            count += 1
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            name = node.func.id if isinstance(node.func, ast.Name) else name
            if name and (name.lstrip("_").startswith("assert") or name in _PYTEST_CHECKS):
                count += 1
    return count


def _files(revision: str | None) -> dict[str, str]:
    """The texts of the test files and docs, in the work tree or at ``revision``."""
    if revision is None:
        paths = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("docs/**/*.md"), ROOT / "README.md"]
        return {str(p.relative_to(ROOT)): p.read_text() for p in paths if p != Path(__file__)}
    names = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", revision], capture_output=True, text=True,
        cwd=ROOT, check=True,
    ).stdout.split()  # fmt: skip
    wanted = [n for n in names if (n.startswith("tests/") and n.endswith(".py"))
              or (n.startswith("docs/") and n.endswith(".md")) or n == "README.md"]  # fmt: skip
    return {n: _show(revision, n) for n in wanted}


def _show(revision: str, name: str) -> str:
    command = ["git", "show", f"{revision}:{name}"]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True).stdout


def count(revision: str | None = None) -> dict[str, int]:
    """Assertions per file (files with none left out)."""
    counts = {}
    for name, text in _files(revision).items():
        if name.endswith(".md"):
            blocks = [b.code for b in fenced_blocks(text) if b.language in EXECUTED_LANGUAGES]
            text = "\n".join(blocks)
        if found := assertions(text):
            counts[name] = found
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", metavar="REV", help="a git revision to compare with")
    args = parser.parse_args(argv)
    now = count()
    if args.compare is None:
        for name, found in sorted(now.items()):
            print(f"{found:6d}  {name}")
        print(f"{sum(now.values()):6d}  in all")
        return 0
    before = count(args.compare)
    for name in sorted(before.keys() | now.keys()):
        if before.get(name, 0) != now.get(name, 0):
            print(f"{before.get(name, 0):6d} -> {now.get(name, 0):6d}  {name}")
    print(
        f"{sum(before.values()):6d} -> {sum(now.values()):6d}  in all ({args.compare} -> work tree)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
