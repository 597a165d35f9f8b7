"""jaxnet: a functional training library for JAX.

A network is a pair of pure functions, ``init`` and ``apply``; parameters are nested dicts of
arrays; ``jax.grad`` and ``jax.jit`` compile backpropagation; optax supplies the update rule.

>>> import jax, jaxnet as jn
>>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
>>> net.init(jax.random.key(0), (1, 8))[0]
(1, 4)

Every name is imported on first use (PEP 562), so ``import jaxnet`` and the ``jaxnet --help``
command start without importing JAX.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names as mypy and editors see them; at run time __getattr__ imports them
    from jaxnet import data, distributed, losses, metrics, nn, optim, recipes, runs, sweep, train
    from jaxnet.config import ConfigError, from_config, to_config
    from jaxnet.core import (
        ApplyFn,
        CaptureFn,
        InitFn,
        Layer,
        Params,
        Shape,
        ShapeError,
        ShapeTree,
        State,
        elementwise,
        intermediates,
        named,
        output_shape,
        parallel,
        residual,
        serial,
    )
    from jaxnet.describe import register_layer
    from jaxnet.export import export
    from jaxnet.graph import each, graph
    from jaxnet.remat import remat
    from jaxnet.summary import SummaryRow, summary, summary_rows

from jaxnet.version import __version__

__all__ = [
    "ApplyFn",
    "CaptureFn",
    "ConfigError",
    "InitFn",
    "Layer",
    "Params",
    "Shape",
    "ShapeError",
    "ShapeTree",
    "State",
    "SummaryRow",
    "__version__",
    "data",
    "distributed",
    "each",
    "elementwise",
    "export",
    "from_config",
    "graph",
    "intermediates",
    "losses",
    "metrics",
    "named",
    "nn",
    "optim",
    "output_shape",
    "parallel",
    "recipes",
    "register_layer",
    "remat",
    "residual",
    "runs",
    "serial",
    "summary",
    "summary_rows",
    "sweep",
    "to_config",
    "train",
]

_SUBMODULES = frozenset(
    {"data", "distributed", "losses", "metrics", "nn", "optim", "recipes", "runs", "sweep", "train"}
)
_MODULE_OF = {
    "SummaryRow": "jaxnet.summary",
    "summary": "jaxnet.summary",
    "summary_rows": "jaxnet.summary",
    "ConfigError": "jaxnet.config",
    "from_config": "jaxnet.config",
    "to_config": "jaxnet.config",
    "register_layer": "jaxnet.describe",
    "remat": "jaxnet.remat",
    "export": "jaxnet.export",
    "graph": "jaxnet.graph",
    "each": "jaxnet.graph",
}
_NAME_MODULES = {  # every other public name comes from jaxnet.core
    name: _MODULE_OF.get(name, "jaxnet.core")
    for name in __all__
    if name not in _SUBMODULES and name != "__version__"
}
_FUNCTIONS_NAMED_LIKE_THEIR_MODULE = frozenset({"summary", "export", "remat", "graph"})


def __getattr__(name: str) -> Any:
    """Import a submodule or a re-exported name on first use (PEP 562)."""
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxnet.{name}")
    if name in _NAME_MODULES:
        value = getattr(importlib.import_module(_NAME_MODULES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names and whatever is imported already."""
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The ``jaxnet`` module, whose ``summary``, ``export``, ``remat`` and ``graph`` stay the
    functions ``jaxnet.summary.summary``, ``jaxnet.export.export`` and so on.

    Importing a submodule binds it on its package, so the first ``import jaxnet.summary`` (by
    anyone, e.g. a doctest runner) would rebind ``jn.summary`` to the module; eager imports
    avoided that by binding the function last. Assigning a module's ``__class__`` is Python's
    documented hook for this ("Customizing module attribute access").
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FUNCTIONS_NAMED_LIKE_THEIR_MODULE and isinstance(value, types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
