"""Metrics: quantities to report, not to differentiate."""

from __future__ import annotations

import jax.numpy as jnp

from jaxnet.core import Array, ShapeError

__all__ = [
    "accuracy",
    "monitor_mode",
]


def accuracy(logits: Array, labels: Array) -> Array:
    """The fraction of examples whose predicted class equals the label.

    Three forms are understood:

    * multi-class, integer labels: ``logits (..., C)``, ``labels (...)``; the prediction is the
      argmax over the last axis;
    * multi-class, one-hot (or soft) labels: both ``(batch, ..., C)`` with ``C > 1``; the label
      is their argmax;
    * binary: ``logits`` and 0/1 ``labels`` of the same shape, either ``(batch,)`` or with a last
      axis of 1, or ``(..., 1)`` logits with ``(...)`` labels; the prediction is ``logits > 0``.

    Returns:
      A float32 scalar in [0, 1].

    Raises:
      ShapeError: if ``labels`` fit none of these forms.

    Example:
      >>> import jax.numpy as jnp, jaxnet as jn
      >>> jn.metrics.accuracy(jnp.array([[2.0, 1.0], [0.0, 3.0]]), jnp.array([0, 0]))
      Array(0.5, dtype=float32)
    """
    integer_labels = jnp.issubdtype(labels.dtype, jnp.integer)
    if logits.ndim >= 1 and logits.shape[-1] == 1 and labels.shape == logits.shape[:-1]:
        hits = (logits[..., 0] > 0) == (labels > 0.5)  # one logit per example: binary
    elif integer_labels and logits.ndim >= 1 and labels.shape == logits.shape[:-1]:
        hits = jnp.argmax(logits, axis=-1) == labels
    elif logits.shape == labels.shape and logits.ndim >= 2 and logits.shape[-1] > 1:
        hits = jnp.argmax(logits, axis=-1) == jnp.argmax(labels, axis=-1)
    elif logits.shape == labels.shape:
        hits = (logits > 0) == (labels > 0.5)
    else:
        raise ShapeError(
            f"labels of shape {tuple(labels.shape)} do not fit logits of shape "
            f"{tuple(logits.shape)}: expected labels {tuple(logits.shape[:-1])} (class indices) "
            f"or {tuple(logits.shape)} (one-hot or binary)",
            root="accuracy",
        )
    return jnp.mean(hits.astype(jnp.float32))


def monitor_mode(monitor: str) -> str:
    """Which way is better for a history key: ``"max"`` for an accuracy, ``"min"`` for
    anything else (a loss). ``fit`` ranks checkpoints, stops early and reduces on plateau by
    it unless told otherwise.

    >>> monitor_mode("val_accuracy"), monitor_mode("val_loss")
    ('max', 'min')
    """
    return "max" if "accuracy" in monitor else "min"
