"""The layout cannot drift back: imports run one way (docs/concepts.md, "Where things live").

Every module of ``jaxnet/`` is read (its imports at the top and inside functions alike), and
each import of another part of jaxnet must go to a part on the same floor or below. On top of
that, the rules the house was built for are named one by one, so that a failure says which.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import jaxnet

PACKAGE = Path(jaxnet.__file__).resolve().parent

FLOORS: tuple[frozenset[str], ...] = (
    frozenset({"version", "shapes", "validate", "atomic", "describe"}),  # imports nothing
    frozenset({"core"}),
    frozenset(
        {"nn", "graph", "remat", "losses", "metrics", "summary", "plot", "distributed", "config"}
        | {"data"}
    ),
    frozenset({"optim"}),
    frozenset({"runs"}),
    frozenset({"train"}),
    frozenset({"export", "sweep"}),
    frozenset({"recipes"}),
    frozenset({"cli", "cli_model", "cli_lr_find", "console"}),
)
"""The floors of the house, lowest first: a part imports parts of its floor or below."""

NEVER: dict[str, frozenset[str]] = {
    "data": frozenset({"core", "nn", "graph", "optim", "runs", "train"}),  # data knows no layers
    "optim": frozenset({"runs", "train"}),  # the update rule knows no folder and no loop
    "runs": frozenset({"train"}),  # the run folder never imports the loop
}
"""The rules of the house issue, named one by one."""


def _module_name(path: Path) -> str:
    parts = ["jaxnet", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, target)`` for every import of jaxnet in ``path``, at any depth (a function's
    lazy import runs upward as much as one at the top)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join([*base, node.module or ""]) if node.level else node.module or ""
            module = module.rstrip(".")
            if module == "jaxnet":  # from jaxnet import data, atomic: each a module of its own
                found += [(node.lineno, f"jaxnet.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return [(line, target) for line, target in found if target.split(".")[0] == "jaxnet"]


def _part(module: str) -> str:
    """The part of the house a module belongs to: ``jaxnet.runs.load`` -> ``runs``."""
    return module.split(".")[1]


def _floor(part: str) -> int | None:
    return next((i for i, floor in enumerate(FLOORS) if part in floor), None)


MODULES = sorted(PACKAGE.rglob("*.py"))


def _violations(path: Path) -> list[str]:
    """Every import in ``path`` that runs upward or breaks a named rule."""
    name = _module_name(path)
    if name == "jaxnet":
        return []  # the public face re-exports everything, lazily
    part, problems = _part(name), []
    for line, target in _imports(path):
        where = f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}"
        other = _part(target) if "." in target else "jaxnet"
        if other == part:
            continue
        if _floor(other) is None:
            problems.append(f"{where}: not a part of the house (the package's public face?)")
        elif other in NEVER.get(part, ()):
            problems.append(f"{where}: {part} must not import {other}")
        elif _floor(other) > _floor(part):  # type: ignore[operator]
            problems.append(f"{where}: {other} is on a floor above {part}")
    return problems


def test_every_part_of_jaxnet_has_a_floor() -> None:
    parts = {_part(name) for name in map(_module_name, MODULES) if name != "jaxnet"}
    unplaced = sorted(part for part in parts if _floor(part) is None)
    assert not unplaced, f"add {unplaced} to a floor of FLOORS (and to docs/concepts.md)"


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE.parent)) for p in MODULES])
def test_imports_run_one_way(path: Path) -> None:
    assert _violations(path) == []


def test_the_checker_sees_upward_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module written to break each rule is caught, by line, with the rule it breaks."""
    fake = tmp_path / "jaxnet"
    (fake / "runs").mkdir(parents=True)
    (fake / "data").mkdir()
    (fake / "runs" / "bad.py").write_text(
        "from jaxnet.optim import TrainState\n\ndef f():\n    from jaxnet.train import fit\n"
    )
    (fake / "data" / "bad.py").write_text("from jaxnet.core import map_shapes\n")
    (fake / "metrics.py").write_text("from jaxnet import __version__\nfrom .optim import x\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _violations(fake / "runs" / "bad.py") == [
        "jaxnet/runs/bad.py:4 imports jaxnet.train: runs must not import train"
    ]
    assert _violations(fake / "data" / "bad.py") == [
        "jaxnet/data/bad.py:1 imports jaxnet.core: data must not import core"
    ]
    assert _violations(fake / "metrics.py") == [
        "jaxnet/metrics.py:1 imports jaxnet.__version__: not a part of the house "
        "(the package's public face?)",
        "jaxnet/metrics.py:2 imports jaxnet.optim: optim is on a floor above metrics",
    ]


LOADED_BELOW = """
import sys, importlib
importlib.import_module({module!r})
print(sorted({{m.split(".")[1] for m in sys.modules if m.startswith("jaxnet.")}}))
"""


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("jaxnet.data", {"core", "nn", "optim", "runs", "train"}),
        ("jaxnet.optim", {"runs", "train"}),
        ("jaxnet.runs", {"train"}),
    ],
)
def test_importing_a_part_loads_nothing_above_it(module: str, absent: set[str]) -> None:
    """In a fresh interpreter, importing a part loads no part it must not know."""
    code = LOADED_BELOW.format(module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out.strip().splitlines()[-1]))
    assert _part(module) in loaded
    assert not loaded & absent, f"importing {module} loaded {sorted(loaded & absent)}"


FIT_KEYWORDS_CEILING = 23
"""fit's keywords today; a new setting joins a group (``Update``, ``Streaming``,
``Checkpointing``, ``EarlyStopping``) instead of adding one (docs/training.md)."""


def test_fit_does_not_grow() -> None:
    import inspect

    signature = inspect.signature(jaxnet.train.fit)
    keywords = [p.name for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert len(keywords) <= FIT_KEYWORDS_CEILING, (
        f"fit takes {len(keywords)} keywords, more than {FIT_KEYWORDS_CEILING}: add the new "
        "setting as a field of an existing group (Update, Streaming, Checkpointing) instead"
    )
    groups = {"update": "Update", "streaming": "Streaming", "checkpointing": "Checkpointing"}
    for name, group in groups.items():
        assert signature.parameters[name].annotation == f"{group} | None"
