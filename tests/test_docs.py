"""The documentation runs: every Python block of the docs, and every docstring example.

* Each ```python block of ``docs/**/*.md`` and ``README.md`` is executed; the blocks of one file run
  in order in one shared namespace, in a temporary working directory. Blocks fenced as
  ```text, ```bash, ```console (or anything but python) are shown, not run.
* Relative links in those files point to files that exist.
* The docstring examples of every module under ``jaxnet/`` pass as doctests (ELLIPSIS and
  NORMALIZE_WHITESPACE). A module that fails to import fails its test: none is skipped.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
import tempfile
import traceback
from pathlib import Path
from typing import NamedTuple

import pytest

import jaxnet

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(jaxnet.__file__).resolve().parent
DOC_FILES = sorted((ROOT / "docs").rglob("*.md")) + [
    path for path in [ROOT / "README.md"] if path.exists()
]
EXECUTED_LANGUAGES = ("python", "py")
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")
_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")


class Block(NamedTuple):
    language: str  # the first word of the fence's info string; "" if none
    line: int  # 1-based line number of the first line of code in the file
    code: str


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, dedented by their fence's indentation."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        language = (opening["info"].split() or [""])[0].lower()
        body: list[str] = []
        i += 1
        start = i + 1
        while i < len(lines) and not _closes(lines[i], fence):
            line = lines[i]
            body.append(line[len(indent) :] if line.startswith(indent) else line.lstrip())
            i += 1
        if i == len(lines):
            raise ValueError(f"the code block opened on line {start - 1} is never closed")
        blocks.append(Block(language, start, "\n".join(body) + "\n"))
        i += 1
    return blocks


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and set(stripped) == {fence[0]}


def test_fenced_blocks_parser() -> None:
    text = "intro\n```python\na = 1\n```\n\n  ~~~text\n  not code\n  ~~~\n```py\nb = a\n```\n"
    assert fenced_blocks(text) == [
        Block("python", 3, "a = 1\n"),
        Block("text", 7, "not code\n"),
        Block("py", 10, "b = a\n"),
    ]
    with pytest.raises(ValueError, match="never closed"):
        fenced_blocks("```python\na = 1\n")


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_there_are_docs_to_test() -> None:
    assert (ROOT / "docs" / "index.md") in DOC_FILES
    assert (ROOT / "docs" / "concepts.md") in DOC_FILES


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_python_blocks_run(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    if path.name == "README.md":  # the reader's first run: XLA's default compiler
        request.getfixturevalue("default_optimizations")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # mkdtemp() in an example, too
    blocks = [b for b in fenced_blocks(path.read_text()) if b.language in EXECUTED_LANGUAGES]
    namespace: dict[str, object] = {"__name__": f"docs_{path.stem}"}
    for number, block in enumerate(blocks, start=1):
        # Pad with newlines so that tracebacks give the line numbers of the Markdown file.
        source = "\n" * (block.line - 1) + block.code
        try:
            exec(compile(source, str(path), "exec"), namespace)
        except Exception:
            pytest.fail(
                f"{_rel(path)}: python block {number} of {len(blocks)} (line {block.line}) "
                f"failed:\n{traceback.format_exc()}",
                pytrace=False,
            )


@pytest.mark.parametrize("path", DOC_FILES, ids=_rel)
def test_relative_links_resolve(path: Path) -> None:
    text = path.read_text()
    for block in fenced_blocks(text):  # links inside code blocks are code, not links
        text = text.replace(block.code, "")
    broken = []
    for match in _LINK.finditer(text):
        target = match["target"]
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # a URL (https:, mailto:) or an anchor on the same page
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{_rel(path)} links to files that do not exist: {broken}"


# ----------------------------------------------------------------------------- doctests


def _discover_modules() -> tuple[list[str], dict[str, str]]:
    """Every module of the package, and the packages that failed to import while walking.

    ``pkgutil.walk_packages`` only descends into directories with an ``__init__.py``, so the
    ``.py`` files on disk are listed too: a module in a directory without one (a namespace
    package) is still tested, never skipped.
    """
    errors: dict[str, str] = {}

    def onerror(name: str) -> None:
        errors[name] = traceback.format_exc()

    names = {jaxnet.__name__}
    for info in pkgutil.walk_packages(jaxnet.__path__, f"{jaxnet.__name__}.", onerror=onerror):
        names.add(info.name)
    for file in PACKAGE_DIR.rglob("*.py"):
        parts = file.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names), errors


MODULES, WALK_ERRORS = _discover_modules()


def test_every_package_imports_while_walking() -> None:
    assert not WALK_ERRORS, "\n".join(f"{name}:\n{tb}" for name, tb in WALK_ERRORS.items())


def test_modules_are_discovered() -> None:
    for name in ("jaxnet", "jaxnet.core", "jaxnet.nn.linear", "jaxnet.data.registry"):
        assert name in MODULES


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(
    module_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = importlib.import_module(module_name)  # an import error fails the test
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the examples' mkdtemp() folders
    finder = doctest.DocTestFinder(exclude_empty=True)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report: list[str] = []
    for test in finder.find(module, module_name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, f"{module_name}: doctest failures:\n{''.join(report)}"
