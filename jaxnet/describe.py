"""How a layer was built: the registered name of its constructor and its arguments.

Every built-in layer, combinator and recurrent cell is made by a constructor wrapped with
:func:`described`, which attaches a :class:`Spec` to what it returns. A net built from such
parts therefore carries the recipe to build it again, and :func:`jaxnet.to_config` turns that
recipe into JSON. User-written layers join with :func:`register_layer`.

The registry is the one piece of module-level state in jaxnet: like Keras's
``register_keras_serializable``, a name has to be known before a config that uses it can be
loaded, and loading never imports code named in a file.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

BUILTIN_PREFIX = "nn."
"""Layer constructors of ``jaxnet.nn`` are registered as ``nn.Dense``, ``nn.LSTM``, ..."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: compared (and hashed) by identity
class Spec:
    """The constructor a layer (or cell) was made by, and the arguments it was given.

    Attributes:
      constructor: the registered name, e.g. ``"nn.Dense"`` or ``"serial"``.
      arguments: the arguments by parameter name, leaving out those equal to their default
        (a ``*layers`` parameter holds its tuple; ``**kwargs`` are recorded one by one).
    """

    constructor: str
    arguments: Mapping[str, Any]

    def __repr__(self) -> str:
        return f"Spec({self.call()})"

    def call(self) -> str:
        """The call this spec records, as code: ``serial(nn.Dense(features=9), nn.Sigmoid)``."""
        if not self.arguments:
            return self.constructor
        args = ", ".join(
            ", ".join(map(_short, value))
            if isinstance(value, tuple) and name == "layers"
            else f"{name}={_short(value)}"
            for name, value in self.arguments.items()
        )
        return f"{self.constructor}({args})"


def _short(value: Any) -> str:
    spec = getattr(value, "spec", None)
    if isinstance(spec, Spec):
        return spec.call()
    return repr(value)


_CONSTRUCTORS: dict[str, Callable[..., Any]] = {}
_BUILTIN: set[str] = set()
_BUILTIN_ELSEWHERE = {"remat": "jaxnet.remat"}
"""Built-in constructors of modules that loading a config does not import by itself (config
imports core and nn), by the jaxnet module that registers them: :func:`constructor` imports it
when a config first names one. The table is jaxnet's own, so no file makes jaxnet import code."""


def _attach(made: T, spec: Spec) -> T:
    """``made`` with ``spec``: a NamedTuple's ``_replace`` (Layer, Cell), else a dataclass's."""
    replace = getattr(made, "_replace", None)
    if replace is not None and "spec" in getattr(made, "_fields", ()):
        return replace(spec=spec)
    if dataclasses.is_dataclass(made) and not isinstance(made, type):
        return dataclasses.replace(made, spec=spec)
    raise TypeError(
        f"register_layer: the constructor {spec.constructor!r} returned "
        f"{type(made).__name__}, not a jaxnet Layer"
    )


def _given(signature: inspect.Signature, args: Any, kwargs: Any) -> dict[str, Any]:
    """The arguments of one call by name, without those that are their parameter's default."""
    bound = signature.bind(*args, **kwargs)
    given: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        parameter = signature.parameters[name]
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            given |= value  # **arguments are recorded as the keywords they were
        elif value is not parameter.default:
            given[name] = value
    return given


def _register(name: str, constructor: Callable[..., Any], *, builtin: bool) -> None:
    if name in _BUILTIN or (not builtin and name in _BUILTIN_ELSEWHERE):
        raise ValueError(f"register_layer: {name!r} is the name of a built-in; pick another")
    if not builtin and name.startswith(BUILTIN_PREFIX):
        raise ValueError(
            f"register_layer: names starting with {BUILTIN_PREFIX!r} are jaxnet's; got {name!r}"
        )
    _CONSTRUCTORS[name] = constructor
    if builtin:
        _BUILTIN.add(name)


def described(name: str, *, builtin: bool = True) -> Callable[[F], F]:
    """Register a constructor under ``name``; what it returns carries a :class:`Spec`.

    The constructor runs first, so its own argument checks speak; then the arguments it was
    called with are recorded.
    """

    def wrap(constructor: F) -> F:
        signature = inspect.signature(constructor)

        @functools.wraps(constructor)
        def build(*args: Any, **kwargs: Any) -> Any:
            made = constructor(*args, **kwargs)
            return _attach(made, Spec(name, _given(signature, args, kwargs)))

        _register(name, build, builtin=builtin)
        return build  # type: ignore[return-value]

    return wrap


def described_instance(name: str, layer: T, *, builtin: bool = True) -> T:
    """Register a ready-made layer (``jn.nn.Sigmoid``) under ``name``; return it with its
    :class:`Spec`."""
    made = _attach(layer, Spec(name, {}))
    _register(name, lambda: made, builtin=builtin)
    return made


@overload
def register_layer(name: str) -> Callable[[F], F]: ...


@overload
def register_layer(name: str, layer: T) -> T: ...


def register_layer(name: str, layer: Any = None) -> Any:
    """Make a layer written by hand describable, so that nets using it go to and from JSON.

    Pass either a ready layer (``Layer(init, apply)``) or the function that builds one; the
    result is what to use in the net. As a decorator, ``@jn.register_layer("Scale")`` over a
    constructor. A constructor's arguments must be JSON values, tuples, layers or functions of
    ``jax.nn`` / ``jax.numpy``. Register the same name again (a notebook cell run twice) to
    replace it. Code that loads a config must register its names first: a config names
    constructors, it never holds code.

    Args:
      name: the name written into configs; any string except jaxnet's own names.
      layer: a :class:`jaxnet.Layer`, or a function returning one. Omit it to get a decorator.

    Returns:
      The layer with its description, or the wrapped constructor.

    Raises:
      TypeError: if ``name`` is not a string, or ``layer`` is neither a layer nor callable.
      ValueError: if ``name`` is empty or taken by jaxnet (``"serial"``, ``"nn.Dense"``).

    Example:
      >>> import jax.numpy as jnp, jaxnet as jn
      >>> @jn.register_layer("Scale")
      ... def Scale(factor):
      ...     return jn.elementwise(lambda x: factor * x, "scale")
      >>> jn.to_config(jn.serial(jn.nn.Dense(2), Scale(3.0)))["net"]["arguments"]["layers"][1]
      {'type': 'Scale', 'arguments': {'factor': 3.0}}
    """
    if not isinstance(name, str):
        raise TypeError(f"register_layer: name must be a string, got {type(name).__name__}")
    if not name:
        raise ValueError("register_layer: name must not be empty")
    if layer is None:
        return described(name, builtin=False)
    if "spec" in getattr(layer, "_fields", ()):  # a Layer (or Cell) itself
        return described_instance(name, layer, builtin=False)
    if callable(layer):
        return described(name, builtin=False)(layer)
    raise TypeError(
        f"register_layer: expected a Layer or a function that builds one, "
        f"got {type(layer).__name__}"
    )


def constructor(name: str) -> Callable[..., Any] | None:
    """The constructor registered as ``name``, or None."""
    if name not in _CONSTRUCTORS and name in _BUILTIN_ELSEWHERE:
        importlib.import_module(_BUILTIN_ELSEWHERE[name])  # registers it
    return _CONSTRUCTORS.get(name)


def registered() -> tuple[str, ...]:
    """Every registered name, sorted."""
    return tuple(sorted(set(_CONSTRUCTORS) | set(_BUILTIN_ELSEWHERE)))
