"""The public surface: every exported name exists and is documented; no private JAX imports.

Functions, classes and modules must carry their own docstring. Values that cannot (a ``Layer``
instance such as ``jn.nn.Sigmoid``, a type alias, a constant) must have an attribute docstring:
a string literal right after their assignment in the module source, as Sphinx reads it.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import itertools
import re
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import pytest

import jaxnet

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = Path(jaxnet.__file__).resolve().parent
PUBLIC_MODULES = (
    "jaxnet",
    "jaxnet.nn",
    "jaxnet.data",
    "jaxnet.train",
    "jaxnet.optim",
    "jaxnet.runs",
)
SUBMODULES = (
    "losses",
    "metrics",
    "nn",
    "data",
    "train",
    "optim",
    "runs",
)  # reached as jn.<name> after `import jaxnet`
RE_EXPORTED_FROM = {"jaxnet.train": ("jaxnet.optim", "jaxnet.runs")}


def _exported() -> list[tuple[str, str]]:
    return [
        (module, name)
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
    ]


def _source_files(module_name: str) -> list[Path]:
    """The files of ``module_name`` and, for a package, of every module below it."""
    module = importlib.import_module(module_name)
    path = Path(module.__file__)
    return sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]


def attribute_docstrings(path: Path) -> dict[str, str]:
    """Module-level ``NAME = ...`` (or ``NAME: T = ...``) assignments followed by a string."""
    body = ast.parse(path.read_text()).body
    docs = {}
    for statement, following in itertools.pairwise(body):
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
        elif isinstance(statement, ast.AnnAssign):
            target = statement.target
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[target.id] = following.value.value
    return docs


def test_attribute_docstrings_parser(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text('A = 1\n"""About A."""\nB = 2\nC: int = 3\n"""About C."""\nD = 4\n')
    assert attribute_docstrings(source) == {"A": "About A.", "C": "About C."}


def _own_docstring(obj: object, name: str) -> str | None:
    """The docstring written for ``obj`` itself, ignoring generated and inherited ones."""
    if isinstance(obj, type):
        doc = obj.__dict__.get("__doc__")
        # namedtuple and dataclass write "Name(field, ...)" when the class has no docstring.
        return None if doc is None or doc.startswith(f"{obj.__name__}(") else doc
    return inspect.getdoc(obj)


def _is_documentable(obj: object) -> bool:
    """Whether ``obj`` carries a docstring of its own (functions, classes, modules)."""
    return isinstance(obj, types.FunctionType | types.BuiltinFunctionType | types.ModuleType | type)


@pytest.mark.parametrize(("module", "name"), _exported(), ids=[f"{m}.{n}" for m, n in _exported()])
def test_every_exported_name_exists_and_is_documented(module: str, name: str) -> None:
    if name == "__version__":
        return  # a version string documents itself; test_version checks its value
    package = importlib.import_module(module)
    assert hasattr(package, name), f"{module}.__all__ lists {name!r}, which does not exist"
    obj = getattr(package, name)
    if _is_documentable(obj):
        doc = _own_docstring(obj, name)
        assert doc and doc.strip(), f"{module}.{name} has no docstring"
        return
    # A value (Layer instance, type alias, constant): its docstring lives in the source, of
    # the module or, for a name re-exported from its home (jn.train.OPTIMIZERS), of that home.
    homes = [module, *RE_EXPORTED_FROM.get(module, ())]
    documented = {
        var
        for home in homes
        for path in _source_files(home)
        for var, doc in attribute_docstrings(path).items()
        if doc.strip()
    }
    assert name in documented, (
        f"{module}.{name} is a {type(obj).__name__} value without an attribute docstring: "
        f'write a string literal ("""...""") on the line after its assignment'
    )


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_all_has_no_duplicates(module: str) -> None:
    names = importlib.import_module(module).__all__
    assert len(names) == len(set(names))


def test_version_is_written_once_and_installed_as_such() -> None:
    """pyproject.toml reads the version from jaxnet/version.py, the one place it is written,
    and the installed distribution reports the same."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"]
    assert pyproject["project"]["dynamic"] == ["version"]
    source = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert source == "jaxnet.version.__version__"
    assert importlib.metadata.version("jaxnet-functional") == jaxnet.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", jaxnet.__version__)


def test_submodules_are_reachable_from_a_fresh_import() -> None:
    """``import jaxnet as jn`` is enough to reach ``jn.losses``, ``jn.data``, ... (DESIGN.md).

    Run in a fresh interpreter: here, other tests have imported the submodules already.
    """
    code = f"import jaxnet as jn; print([n for n in {SUBMODULES!r} if not hasattr(jn, n)])"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]", f"not reachable as jn.<name>: {result.stdout.strip()}"
    for name in SUBMODULES:
        assert name in jaxnet.__all__


_PRIVATE_JAX = re.compile(
    r"\bjax\.(_src|core|interpreters)\b"  # import jax._src.x, from jax.core import y, jax.core.z
    r"|\bfrom\s+jax\s+import\s+[^\n]*\b(_src|core|interpreters)\b"  # from jax import core
)


@pytest.mark.parametrize(
    "path", sorted(PACKAGE_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_private_jax_imports(path: Path) -> None:
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if _PRIVATE_JAX.search(line)
    ]
    assert not hits, "jax._src, jax.core and jax.interpreters are not public API:\n" + "\n".join(
        hits
    )


def test_private_jax_pattern() -> None:
    for line in [
        "from jax._src import core",
        "import jax.core",
        "from jax.interpreters import batching",
        "from jax import core",
        "x = jax._src.api.jit",
    ]:
        assert _PRIVATE_JAX.search(line), line
    for line in ["import jax.numpy as jnp", "from jax import tree_util", "jax.tree.map(f, t)"]:
        assert not _PRIVATE_JAX.search(line), line


def test_package_is_typed() -> None:
    assert (PACKAGE_DIR / "py.typed").is_file()
