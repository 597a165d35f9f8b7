"""Write docs/api.md: every public name of jaxnet with its signature and docstring summary.

The public names of a module are its ``__all__``; a module without one contributes the public
functions and classes defined in it and its module-level assignments (``OPTIMIZERS = ...``).
Signatures are read from the source, so defaults appear as written (``w_init=LECUN_NORMAL``),
not as reprs with memory addresses; values (ready layers such as ``Sigmoid``, type aliases,
constants) take the string literal written after their assignment as their docstring.

Run:    python -m experiments.make_api_reference            (writes docs/api.md)
        python -m experiments.make_api_reference --check    (exit 1 if docs/api.md is stale)
tests/test_api_reference.py fails when a public name is missing or the file is stale.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import jaxnet

ROOT = Path(__file__).resolve().parents[1]
API_MD = ROOT / "docs" / "api.md"
MODULES = (
    "jaxnet",
    "jaxnet.nn",
    "jaxnet.train",
    "jaxnet.optim",
    "jaxnet.runs",
    "jaxnet.data",
    "jaxnet.losses",
    "jaxnet.metrics",
    "jaxnet.sweep",
    "jaxnet.recipes",
)
HEADER = """\
# API reference

Every public name of `jaxnet`, with its signature and the first paragraph of its docstring.
Generated from the code by `python -m experiments.make_api_reference`; do not edit by hand
(`tests/test_api_reference.py` fails when this page is stale or misses a public name). The
[tutorial](tutorial.md) and [concepts](concepts.md) show how the pieces fit together.
"""


def public_names(module: types.ModuleType) -> list[str]:
    """``__all__``, or else the public functions, classes and assignments defined in the module."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    assigned = _assignments(_tree(module))
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, types.ModuleType):
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            if getattr(obj, "__module__", None) == module.__name__:  # defined, not imported
                names.append(name)
        elif name in assigned:
            names.append(name)
    return names


def _tree(module: types.ModuleType) -> ast.Module:
    return ast.parse(Path(inspect.getfile(module)).read_text())


def _assignments(tree: ast.Module) -> dict[str, tuple[ast.expr | None, str | None]]:
    """Module-level ``NAME = value`` (or ``NAME: T = value``): the value and the docstring after."""
    found: dict[str, tuple[ast.expr | None, str | None]] = {}
    body = tree.body
    for i, statement in enumerate(body):
        value: ast.expr | None
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign):
            target, value = statement.target, statement.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        following = body[i + 1] if i + 1 < len(body) else None
        doc = None
        if (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            doc = inspect.cleandoc(following.value.value)
        found[target.id] = (value, doc)
    return found


def _value_source(module: types.ModuleType, name: str) -> tuple[ast.expr | None, str | None]:
    """Where a value is assigned: follow ``from x import name`` back to its assignment (also
    one under ``if TYPE_CHECKING:``, as a lazily importing package writes it)."""
    tree = _tree(module)
    assigned = _assignments(tree)
    if name in assigned:
        return assigned[name]
    for statement in ast.walk(tree):
        if not isinstance(statement, ast.ImportFrom):
            continue
        for alias in statement.names:
            if (alias.asname or alias.name) != name:
                continue
            package = module.__name__ if hasattr(module, "__path__") else module.__package__
            source = importlib.import_module(
                "." * statement.level + (statement.module or ""),
                package if statement.level else None,
            )
            return _value_source(source, alias.name)
    return None, None


def _function_signature(fn: types.FunctionType) -> str:
    """``name(a, *, b=DEFAULT) -> Ret`` with defaults and return type as written in the source."""
    node = ast.parse(inspect.cleandoc("\n" + inspect.getsource(fn))).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    args = node.args
    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
        if arg is not None:
            arg.annotation = None  # annotations make signatures long; the docstring has shapes
    returns = f" -> {ast.unparse(node.returns)}" if node.returns is not None else ""
    return f"{fn.__name__}({ast.unparse(args)}){returns}"


def _class_signature(cls: type) -> str:
    kind = "exception" if issubclass(cls, BaseException) else "class"
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return f"{kind} {cls.__name__}"
    empty = inspect.Parameter.empty
    signature = signature.replace(  # annotations make signatures long; the docstring has shapes
        parameters=[p.replace(annotation=empty) for p in signature.parameters.values()],
        return_annotation=empty,
    )
    shown = str(signature)
    if shown == "(*args, **kwargs)" or " at 0x" in shown:
        shown = ""  # Protocols and the like: the docstring says how to call them
    return f"{kind} {cls.__name__}{shown}"


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    paragraph = inspect.cleandoc(doc).split("\n\n")[0]
    text = " ".join(line.strip() for line in paragraph.splitlines())
    text = re.sub(r":(?:func|class|mod|meth|attr|data):`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


def _own_doc(obj: object) -> str | None:
    """A docstring written for ``obj`` itself (not namedtuple's or dataclass' generated one)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        return None if doc is None or doc.startswith(f"{obj.__name__}(") else doc
    return inspect.getdoc(obj)


def describe(module: types.ModuleType, name: str) -> tuple[str, str]:
    """The signature line and the docstring summary of ``module.name``."""
    obj = getattr(module, name)
    if isinstance(obj, types.ModuleType):
        return f"module {obj.__name__}", _first_paragraph(obj.__doc__)
    if inspect.isclass(obj):
        return _class_signature(obj), _first_paragraph(_own_doc(obj))
    if inspect.isfunction(obj):
        return _function_signature(inspect.unwrap(obj)), _first_paragraph(_own_doc(obj))
    value, doc = _value_source(module, name)
    return f"{name}{_value_line(obj, value)}", _first_paragraph(doc)


def _value_line(obj: object, value: ast.expr | None) -> str:
    """``: Layer`` for a ready layer, ``: mapping of 'a', 'b'`` for a table, else ``= source``."""
    if isinstance(obj, jaxnet.Layer):
        return ": Layer"
    if isinstance(obj, Mapping):
        return ": mapping of " + ", ".join(repr(key) for key in obj)
    shown = ast.unparse(value) if value is not None else repr(obj)
    return f": {type(obj).__name__}" if len(shown) > 70 or " at 0x" in shown else f" = {shown}"


def render() -> str:
    """The text of docs/api.md."""
    modules = [importlib.import_module(m) for m in MODULES]
    parts = [HEADER, ""]
    parts += [f"- [`{m.__name__}`](#{m.__name__.replace('.', '')})" for m in modules]
    for module in modules:
        parts += ["", f"## {module.__name__}", "", _first_paragraph(module.__doc__)]
        for name in public_names(module):
            signature, summary = describe(module, name)
            parts += ["", f"### {module.__name__}.{name}", "", "```text", signature]
            if "](" in summary:  # would read as a Markdown link: keep it in the code block
                parts += ["", summary, "```"]
            else:
                parts += ["```", *(["", summary] if summary else [])]
    return "\n".join(parts).rstrip() + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Write docs/api.md, or with ``--check`` report whether it is up to date."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/api.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        stale = not API_MD.exists() or API_MD.read_text() != text
        print(f"{API_MD.relative_to(ROOT)} is {'stale' if stale else 'up to date'}")
        return int(stale)
    API_MD.write_text(text)
    print(f"wrote {API_MD.relative_to(ROOT)}: {text.count(chr(10) + '### ')} names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
