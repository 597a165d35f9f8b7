"""``Model``: a trained net with its parameters and preprocessing, ready to predict.

Predictions always go through the preprocessing fitted on the training data, so raw inputs
give the answers the net was trained to give. The forward pass is one pure function of the
raw inputs (:meth:`Model.forward`), which ``predict`` compiles once and which
:func:`jaxnet.export` serializes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

from jaxnet import losses
from jaxnet.core import Array, Layer, Params, State
from jaxnet.data.preprocessing import Preprocessing, TreePreprocessing
from jaxnet.data.trees import num_rows, tree_map
from jaxnet.validate import positive_int

OUTPUTS = ("logits", "binary_logits", "values", "scores")
"""How to read a net's outputs: class logits (softmax cross-entropy), one logit per binary
label (sigmoid cross-entropy), regression values, or class scores of another loss."""

_OUTPUTS_OF_LOSS = {
    losses.softmax_cross_entropy: "logits",
    losses.sigmoid_binary_cross_entropy: "binary_logits",
    losses.mse: "values",
}


def outputs_of(loss: Callable[..., Any], task: str | None) -> str:
    """What a net trained with ``loss`` outputs: ``"logits"`` for
    ``jn.losses.softmax_cross_entropy`` and so on; ``"scores"`` (classification) or
    ``"values"`` for a loss jaxnet does not know."""
    kind = _OUTPUTS_OF_LOSS.get(loss)
    if kind is None:
        return "scores" if task == "classification" else "values"
    return kind


def _padded(chunk: np.ndarray, size: int) -> np.ndarray:
    """``chunk`` padded to ``size`` rows by repeating its last row, so one program serves it."""
    if len(chunk) == size:
        return chunk
    return np.concatenate([chunk, np.repeat(chunk[-1:], size - len(chunk), 0)])


def _bucket(n: int) -> int:
    """The power of two at or above ``n`` (1 for none)."""
    return 1 << max(n - 1, 0).bit_length()


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A net, its trained parameters and layer state, and the preprocessing of its inputs.

    Attributes:
      net: the network.
      params: its parameters.
      state: its layer state (BatchNorm statistics; ``{}`` for most nets).
      preprocessing: the map from raw inputs to the net's inputs.
      outputs: how to read the outputs, one of :data:`OUTPUTS`.
      class_names: the class (or target) names, if known.

    Example:
      >>> import jax, numpy as np, jaxnet as jn
      >>> net = jn.nn.Dense(2)
      >>> _, params, state = net.init(jax.random.key(0), (None, 3))
      >>> model = jn.train.Model(net, params, state, jn.data.Preprocessing((3,)), "logits")
      >>> model.predict(np.ones((5, 3))).shape, model.predict_proba(np.ones((5, 3))).shape
      ((5,), (5, 2))
    """

    net: Layer
    params: Params
    state: State
    preprocessing: Preprocessing | TreePreprocessing
    outputs: str = "values"
    class_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.outputs not in OUTPUTS:
            raise ValueError(f"Model: outputs must be one of {OUTPUTS}, got {self.outputs!r}")

    def forward(self, x: Array) -> Array:
        """The net's outputs for raw inputs ``x`` of shape ``(batch, *feature_shape)``, in
        evaluation mode (no dropout, BatchNorm's running statistics); pure and traceable."""
        return self._apply(self.params, self.state, x)

    def _apply(self, params: Params, state: State, x: Array) -> Array:
        y, _ = self.net.apply(params, state, self.preprocessing(x), train=False)
        return y

    @functools.cached_property
    def _compiled(self) -> Callable[..., Array]:
        """:meth:`forward` compiled with the params as arguments, not constants."""
        return jax.jit(self._apply)

    def predict_outputs(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """The raw outputs (logits, values) for raw inputs ``x`` ``(n, *feature_shape)``, as
        NumPy, computed ``batch_size`` examples per compiled call.

        Chunks are padded (repeating the last row) to ``batch_size``, or for fewer rows to the
        next power of two, so that any number of rows runs through a few compiled programs.

        Raises:
          ValueError, TypeError: for inputs of the wrong rank, shape or dtype, a bad
            ``batch_size``, or a net whose output is not one array.
        """
        arr = self.preprocessing.check(x)
        positive_int(batch_size, "batch_size", owner="predict")
        n = num_rows(arr)  # arr may be a tuple or dict of arrays, n rows each
        size = min(int(batch_size), _bucket(n))
        first = tree_map(lambda a: a[:1].repeat(size, 0), arr)
        out = jax.eval_shape(self._compiled, self.params, self.state, first)
        if not isinstance(out, jax.ShapeDtypeStruct):
            raise ValueError(
                f"predict: the net returns {type(out).__name__}, not one array; predict and "
                "export take nets with a single output"
            )
        chunks = [np.zeros((0, *out.shape[1:]), out.dtype)]
        for start in range(0, n, size):
            chunk = tree_map(lambda a, s=start: _padded(a[s : s + size], size), arr)
            y = np.asarray(self._compiled(self.params, self.state, chunk))
            chunks.append(y[: min(size, n - start)])
        return np.concatenate(chunks)

    def predict(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """Predictions for raw inputs: class labels (int32, the argmax of the logits; for
        ``binary_logits`` 1 where the logit is positive) for classification, the values for
        regression."""
        y = self.predict_outputs(x, batch_size=batch_size)
        if self.outputs in ("logits", "scores"):
            return y.argmax(axis=-1).astype(np.int32)
        if self.outputs == "binary_logits":
            return (y > 0).astype(np.int32)
        return y

    def predict_proba(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities for raw inputs: the softmax of the logits (``(n, classes)``),
        or the sigmoid of each binary logit.

        Raises:
          ValueError: if the outputs are not logits (a regression, or a loss jaxnet does not
            know, whose scores need not be probabilities).
        """
        if self.outputs not in ("logits", "binary_logits"):
            raise ValueError(
                f"predict_proba: this model outputs {self.outputs}, not logits; probabilities "
                "are known for nets trained with jn.losses.softmax_cross_entropy or "
                "sigmoid_binary_cross_entropy"
            )
        y = self.predict_outputs(x, batch_size=batch_size)
        if self.outputs == "logits":
            return np.asarray(jax.nn.softmax(y, axis=-1))
        return np.asarray(jax.nn.sigmoid(y))
