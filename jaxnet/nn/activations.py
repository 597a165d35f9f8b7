"""Activation functions as ready layers, stax-style, each built on ``jax.nn``.

The lecture's non-linearities, with their derivatives and ranges:

===========  ====================================  ==============================  ============
layer        a ↦ y                                 dy/da                           range
===========  ====================================  ==============================  ============
Sigmoid      σ(a) = 1 / (1 + e⁻ᵃ)                  σ(a)(1 − σ(a))                  (0, 1)
Tanh         (eᵃ − e⁻ᵃ) / (eᵃ + e⁻ᵃ)               4 / (eᵃ + e⁻ᵃ)²                 (−1, 1)
Relu         max(0, a)                             1 if a > 0 else 0               [0, ∞)
Softmax      σᵢ = eᵃⁱ / Σⱼ eᵃʲ (last axis)         ∂σᵢ/∂aⱼ = σᵢ(δᵢⱼ − σⱼ)          (0, 1), Σ = 1
===========  ====================================  ==============================  ============

``Softmax`` turns the lecture's ``a = [-0.21, 0.47, 1.72]`` into ``[0.1, 0.2, 0.7]`` (rounded).
Each layer has no parameters and keeps its input's shape. For a variant with other constants,
wrap any function: ``jn.nn.Activation(functools.partial(jax.nn.leaky_relu, negative_slope=0.2))``.

GELU comes in two ready forms, because libraries disagree on the default: ``Gelu`` is
``jax.nn.gelu``'s tanh approximation (Flax's default, BERT's and GPT-2's), ``GeluExact`` is
``a·Φ(a)`` with the normal CDF ``Φ`` computed through ``erf`` (PyTorch's ``nn.GELU()`` and
Keras's default). They differ by less than 5·10⁻⁴; run a model with the form it was trained
with. Both are ready layers (no call), like every activation here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from jaxnet.core import Array, Layer, elementwise
from jaxnet.describe import described, described_instance


@described("nn.Activation")
def Activation(fn: Callable[[Array], Array], name: str | None = None) -> Layer:
    """A layer that applies the elementwise (or last-axis) function ``fn``.

    Args:
      fn: a function of one array that keeps its shape, e.g. ``jax.nn.silu``.
      name: the layer's kind in parameter paths; defaults to ``fn.__name__``.

    Raises:
      TypeError: if ``fn`` is not callable or ``name`` not a string.
      ValueError: if ``name`` is not an identifier.
    """
    if not callable(fn):
        raise TypeError(f"activation: fn must be callable, got {type(fn).__name__}")
    if name is not None and not isinstance(name, str):
        raise TypeError(f"activation: name must be a string, got {type(name).__name__}")
    name = name or str(getattr(fn, "__name__", "activation"))
    if not name.isidentifier():  # lambdas are "<lambda>"; "/" would break parameter paths
        raise ValueError(
            f"activation: name must be an identifier such as 'my_act', got {name!r}; "
            "pass name=... for lambdas and partials"
        )
    return elementwise(fn, name)


Sigmoid = described_instance("nn.Sigmoid", elementwise(jax.nn.sigmoid, "sigmoid"))
"""σ(a) = 1/(1 + e⁻ᵃ), range (0, 1), derivative σ(1 − σ)."""
Tanh = described_instance("nn.Tanh", elementwise(jax.numpy.tanh, "tanh"))
"""tanh(a), range (−1, 1), derivative 4/(eᵃ + e⁻ᵃ)² = 1 − tanh²."""
Relu = described_instance("nn.Relu", elementwise(jax.nn.relu, "relu"))
"""max(0, a), range [0, ∞), derivative the step (0 for a < 0, 1 for a > 0; JAX takes 0 at a = 0)."""
Softmax = described_instance("nn.Softmax", elementwise(jax.nn.softmax, "softmax"))
"""eᵃⁱ/Σⱼ eᵃʲ over the last axis, range (0, 1), summing to 1; stable for logits of ±1000."""
LogSoftmax = described_instance("nn.LogSoftmax", elementwise(jax.nn.log_softmax, "log_softmax"))
"""log of Softmax, computed stably; pair it with a negative log-likelihood loss."""
LeakyRelu = described_instance("nn.LeakyRelu", elementwise(jax.nn.leaky_relu, "leaky_relu"))
"""max(a, 0.01·a): a small slope for negative inputs keeps gradients alive."""
Elu = described_instance("nn.Elu", elementwise(jax.nn.elu, "elu"))
"""a for a > 0, eᵃ − 1 otherwise; range (−1, ∞)."""
Gelu = described_instance("nn.Gelu", elementwise(jax.nn.gelu, "gelu"))
"""a·Φ(a) in jax.nn's tanh approximation, as in BERT and GPT-2:
``0.5·a·(1 + tanh(√(2/π)·(a + 0.044715·a³)))``. For the exact form use ``GeluExact``."""
GeluExact = described_instance(
    "nn.GeluExact", elementwise(functools.partial(jax.nn.gelu, approximate=False), "gelu_exact")
)
"""a·Φ(a) exactly, ``Φ(a) = (1 + erf(a/√2))/2`` the standard normal CDF: PyTorch's ``nn.GELU()``
and Keras's ``gelu``; within 5·10⁻⁴ of the tanh approximation ``Gelu``. Derivative
``Φ(a) + a·φ(a)``."""
Selu = described_instance("nn.Selu", elementwise(jax.nn.selu, "selu"))
"""λ·a for a > 0, λ·α·(eᵃ − 1) otherwise, with α ≈ 1.6732632423543772 and λ ≈ 1.0507009873554805
(Klambauer et al., 2017): the constants for which a standard normal input gives an output of mean
0 and variance 1, so a deep stack of ``Dense`` layers with their default LeCun-normal init keeps
its activations normalized ("self-normalizing"). Range (−λα, ∞) ≈ (−1.7581, ∞)."""
Softplus = described_instance("nn.Softplus", elementwise(jax.nn.softplus, "softplus"))
"""log(1 + eᵃ), a smooth ReLU with range (0, ∞) and derivative σ(a)."""
Swish = described_instance("nn.Swish", elementwise(jax.nn.swish, "swish"))
"""a·σ(a) (also called SiLU)."""
