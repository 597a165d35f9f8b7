"""jaxnet: a functional training library for JAX.

A network is a pair of pure functions, ``init`` and ``apply``; parameters are nested dicts of
arrays; ``jax.grad`` and ``jax.jit`` compile backpropagation; optax supplies the update rule.

>>> import jax, jaxnet as jn
>>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
>>> net.init(jax.random.key(0), (1, 8))[0]
(1, 4)
"""

from jaxnet import data, distributed, losses, metrics, nn, recipes, sweep, train
from jaxnet.core import (
    ApplyFn,
    CaptureFn,
    InitFn,
    Layer,
    Params,
    Shape,
    ShapeError,
    State,
    elementwise,
    intermediates,
    named,
    output_shape,
    parallel,
    residual,
    serial,
)
from jaxnet.summary import SummaryRow, summary, summary_rows

__version__ = "0.1.0"

__all__ = [
    "ApplyFn",
    "CaptureFn",
    "InitFn",
    "Layer",
    "Params",
    "Shape",
    "ShapeError",
    "State",
    "SummaryRow",
    "__version__",
    "data",
    "distributed",
    "elementwise",
    "intermediates",
    "losses",
    "metrics",
    "named",
    "nn",
    "output_shape",
    "parallel",
    "recipes",
    "residual",
    "serial",
    "summary",
    "summary_rows",
    "sweep",
    "train",
]
