"""Why did my step compile again? A retrace explainer that names the jaxnet path that changed.

``jax.jit`` traces (and compiles) a function again for every new *abstract signature* of its
arguments: tree structure, shapes, dtypes, weak types and static values. A retrace in a training
loop usually means a bug that costs a compile per occurrence: a last partial batch of another
size, a float64 array sneaking in, a Python scalar where an array was before, a parameter added
to the tree. :func:`watch_retraces` wraps the function you pass to ``jax.jit``; it records the
signature of every trace and, when the function is traced again, warns with what changed since
the previous trace, by jaxnet path (``params/dense_0/w``), one :class:`RetraceWarning` per
cause.

JAX's own ``jax.config.update("jax_explain_cache_misses", True)`` explains every cache miss of
every function in the process through the ``jax`` logger, comparing with the closest previous
key and naming paths as Python indexing (``ts.params['dense_0']['w']``). This watcher is its
per-function complement for training code: it is on for the functions that ask for it only (no
global switch), speaks in the paths that checkpoints, optimizer masks and error messages use,
lists every difference (not the first), says how to fix each kind, and warns through
:mod:`warnings`, so tests can turn a retrace into an error and users can filter it by category.

Example:
  >>> import warnings, jax, jax.numpy as jnp
  >>> step = jax.jit(watch_retraces(lambda params, x: x @ params["w"], name="step"))
  >>> params = {"w": jnp.ones((3, 2))}
  >>> _ = step(params, jnp.ones((4, 3)))
  >>> _ = step(params, jnp.ones((4, 3)))        # same signature: no trace, no warning
  >>> with warnings.catch_warnings(record=True) as caught:
  ...     warnings.simplefilter("always")
  ...     _ = step(params, jnp.ones((5, 3)))    # a new batch size traces again
  >>> print(caught[0].message)  # doctest: +ELLIPSIS
  step was traced again (trace 2): x changed shape: f32[4,3] before, f32[5,3] now. ...
"""

from __future__ import annotations

import functools
import inspect
import os
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Any, NamedTuple, TypeVar

import jax

from jaxnet.optim.state import TrainState

F = TypeVar("F", bound=Callable[..., Any])

_SHOWN = 4  # paths listed per warning; the rest are counted


class RetraceWarning(UserWarning):
    """A jitted function was traced (and will be compiled) again; the message says why.

    Silence it with ``warnings.filterwarnings("ignore", category=jn.train.RetraceWarning)``,
    or turn it into an error in tests with ``"error"``.
    """


class _Leaf(NamedTuple):
    """What ``jit`` keys its cache on for one leaf: an abstract array, or a static value."""

    kind: str  # "array" or "static"
    shape: tuple[int, ...] = ()
    dtype: str = ""
    weak_type: bool = False
    short: str = ""  # JAX's own short type, f32[128,64] (or ~f32[] when weakly typed)
    value: Any = None


class _Signature(NamedTuple):
    leaves: dict[str, _Leaf]  # by path, in flattening order
    structures: dict[str, str]  # each argument's tree structure, by argument name


_HINTS = {
    "shape": "Each new shape compiles the function again: keep shapes fixed (drop or pad the "
    "last partial batch, as fit does).",
    "dtype": "Each new dtype compiles the function again: cast inputs once, before the loop "
    "(jnp.asarray(x, jnp.float32)); look for float64 NumPy arrays.",
    "weak_type": "A Python scalar is weakly typed (~f32[]), an array is not: pass the same kind "
    "every time (jnp.float32(x) or jnp.asarray(x, dtype)).",
    "static": "Each new value of a static argument compiles the function again: make it a "
    "traced argument, or keep it fixed.",
    "added": "The pytree gained leaves (a new parameter or optimizer entry): rebuild the train "
    "state with the same net and optimizer, or expect one compile per structure.",
    "removed": "The pytree lost leaves (a parameter or optimizer entry is gone): rebuild the "
    "train state with the same net and optimizer, or expect one compile per structure.",
    "structure": "The containers changed (a dict became a tuple, a NamedTuple its class, "
    "None appeared): pass the same pytree types every time.",
}


def _path(arg: str, value: Any, key_path: tuple[Any, ...]) -> str:
    """The jaxnet path of a leaf: a ``TrainState`` argument's fields are roots
    (``params/dense_0/w``); any other argument is named by its parameter (``batch/0``)."""
    inner = jax.tree_util.keystr(key_path, simple=True, separator="/")
    prefix = "" if isinstance(value, TrainState) else arg
    return "/".join(part for part in (prefix, inner) if part) or arg


def _leaf(value: Any) -> _Leaf:
    if isinstance(value, jax.Array):  # a tracer while jit traces, a concrete array otherwise
        aval = jax.typeof(value)
        weak = bool(getattr(aval, "weak_type", False))
        short = ("~" if weak else "") + aval.str_short(short_dtypes=True)
        return _Leaf("array", tuple(aval.shape), str(aval.dtype), weak, short)
    return _Leaf("static", value=value)


def _arguments(signature: inspect.Signature | None, args: Any, kwargs: Any) -> dict[str, Any]:
    """The call's arguments by parameter name (``args/0`` when the signature is unknown)."""
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            pass  # let the call itself report the wrong arguments
        else:
            return dict(bound.arguments)
    return {**{f"args/{i}": a for i, a in enumerate(args)}, **kwargs}


def _signature_of(arguments: dict[str, Any]) -> _Signature:
    leaves: dict[str, _Leaf] = {}
    structures: dict[str, str] = {}
    for arg, value in arguments.items():
        flat, treedef = jax.tree_util.tree_flatten_with_path(value)
        structures[arg] = str(treedef)
        for key_path, leaf in flat:
            leaves[_path(arg, value, key_path)] = _leaf(leaf)
    return _Signature(leaves, structures)


def _differences(before: _Signature, now: _Signature) -> dict[str, list[tuple[str, str]]]:
    """What changed, grouped by cause: ``{"shape": [(path, "f32[4,3] before, f32[5,3] now")]}``."""
    causes: dict[str, list[tuple[str, str]]] = {}
    for path, leaf in now.leaves.items():
        old = before.leaves.get(path)
        if old is None:
            causes.setdefault("added", []).append((path, _type(leaf)))
            continue
        for cause, changed in _changes(old, leaf):
            if changed:
                causes.setdefault(cause, []).append(
                    (path, f"{_type(old)} before, {_type(leaf)} now")
                )
    for path, leaf in before.leaves.items():
        if path not in now.leaves:
            causes.setdefault("removed", []).append((path, _type(leaf)))
    if not causes:  # the same leaves in other containers (a list became a tuple)
        for arg, structure in now.structures.items():
            if before.structures.get(arg) != structure:
                detail = f"{before.structures.get(arg)} before, {structure} now"
                causes.setdefault("structure", []).append((arg, detail))
    return causes


def _changes(old: _Leaf, new: _Leaf) -> tuple[tuple[str, bool], ...]:
    if old.kind != new.kind or old.kind == "static":
        return (("static", old.kind != new.kind or not _same_value(old.value, new.value)),)
    return (
        ("shape", old.shape != new.shape),
        ("dtype", old.dtype != new.dtype),
        ("weak_type", old.dtype == new.dtype and old.weak_type != new.weak_type),
    )


def _same_value(old: Any, new: Any) -> bool:
    try:
        return bool(type(old) is type(new) and old == new)
    except Exception:  # an exotic __eq__ (jit refuses unhashable static values anyway)
        return old is new


def _type(leaf: _Leaf) -> str:
    """``f32[128,64]`` (``~f32[]`` when weakly typed), or the repr of a static value."""
    if leaf.kind == "array":
        return leaf.short
    text = repr(leaf.value)
    return text if len(text) <= 40 else text[:37] + "..."


_SAYS = {
    "shape": "changed shape",
    "dtype": "changed dtype",
    "weak_type": "changed weak type",
    "static": "changed static value",
    "structure": "changed structure",
}


def _message(name: str, trace: int, cause: str, entries: list[tuple[str, str]]) -> str:
    """``step was traced again (trace 2): x changed shape: f32[4,3] before, f32[5,3] now. <fix>``"""
    if cause in ("added", "removed"):
        listed = [f"{path} ({kind})" for path, kind in entries[:_SHOWN]]
        head = "new leaves: " if cause == "added" else "leaves gone: "
        what = head + ", ".join(listed)
    else:
        what = "; ".join(f"{path} {_SAYS[cause]}: {d}" for path, d in entries[:_SHOWN])
    if len(entries) > _SHOWN:
        what += f" (and {len(entries) - _SHOWN} more)"
    return f"{name} was traced again (trace {trace}): {what}. {_HINTS[cause]}"


_INTERNAL = (os.path.dirname(jax.__file__) + os.sep, os.path.abspath(__file__))


def _user_stacklevel() -> int:
    """The stacklevel of the first frame outside JAX and this module: the user's call."""
    here = inspect.currentframe()
    frame: FrameType | None = here.f_back if here is not None else None  # the warn's caller
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


def watch_retraces(fn: F, *, name: str | None = None) -> F:
    """Wrap ``fn`` (the function you pass to ``jax.jit``) to warn when it is traced again.

    Tracing runs the Python body of ``fn`` with abstract arguments; the wrapper notes the
    arguments' abstract signature each time (tree paths, shapes, dtypes, weak types, static
    values). From the second trace on, it compares with the previous trace and issues one
    :class:`RetraceWarning` per cause (changed shapes, dtypes, weak types, static values, new or
    lost leaves), each naming the paths, both types and the usual fix. A trace with the same
    signature as the previous one (``jax.eval_shape``, ``.lower`` of the same function) is not
    reported. Calls that hit ``jit``'s cache do not run the wrapper at all, so watching costs
    nothing at run time.

    Paths follow checkpoints and optimizer masks: the fields of a :class:`TrainState` argument
    are roots (``params/dense_0/w``, ``opt_state/0/mu/dense_0/w``, ``step``); any other argument
    is named by its parameter (``batch/0`` for ``x`` of ``batch=(x, y)``, ``epoch``).

    Args:
      fn: the function to watch, e.g. a train step ``(train_state, batch) -> ...``.
      name: what the warnings call it; default ``fn.__name__``.

    Returns:
      A function with ``fn``'s signature (for ``static_argnames`` and ``donate_argnames``),
      to pass to ``jax.jit``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> double = jax.jit(watch_retraces(lambda x: 2 * x, name="double"))
      >>> double(jnp.ones(2)).shape
      (2,)
    """
    label = name or str(getattr(fn, "__name__", "function"))
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    previous: list[_Signature] = []  # the last trace's signature
    count = [0]  # traces so far

    @functools.wraps(fn)
    def watched(*args: Any, **kwargs: Any) -> Any:
        now = _signature_of(_arguments(signature, args, kwargs))
        count[0] += 1
        if previous:
            for cause, entries in _differences(previous[0], now).items():
                message = _message(label, count[0], cause, entries)
                warnings.warn(message, RetraceWarning, stacklevel=_user_stacklevel())
        previous[:] = [now]
        return fn(*args, **kwargs)

    return watched  # type: ignore[return-value]
