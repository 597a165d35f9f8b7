"""Losses, averaged over the batch. The math is optax's; jaxnet adds the shape checks.

A loss compares predictions with targets of a *matching* shape. Broadcasting is refused on
purpose: ``(32, 1)`` predictions against ``(32,)`` targets would silently broadcast to
``(32, 32)`` and train on the wrong quantity, so it is a :class:`jaxnet.ShapeError` instead.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from jaxnet.core import Array, ShapeError

__all__ = [
    "mse",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
]


def _same_shape(predictions: Array, targets: Array, *, loss: str, names: str) -> None:
    if predictions.shape != targets.shape:
        first, second = names.split(",")
        raise ShapeError(
            f"{first} and {second} must have the same shape, got "
            f"{tuple(predictions.shape)} and {tuple(targets.shape)}",
            root=loss,
        )


def mse(predictions: Array, targets: Array) -> Array:
    """Mean squared error, ``mean((y − t)²)``: the lecture's L2-norm loss.

    The lecture's ``L = ½ Σ (t − y)²`` differs from this only by a constant factor, which
    rescales the gradient (and so the learning rate) but not its direction.

    Args:
      predictions: array of any shape.
      targets: array of the same shape.

    Returns:
      A scalar.

    Raises:
      ShapeError: if the shapes differ.

    Example:
      >>> import jax.numpy as jnp, jaxnet as jn
      >>> jn.losses.mse(jnp.array([1.0, 2.0]), jnp.array([1.0, 4.0]))
      Array(2., dtype=float32)
    """
    _same_shape(predictions, targets, loss="mse", names="predictions,targets")
    return jnp.mean(optax.losses.squared_error(predictions, targets))


def softmax_cross_entropy(logits: Array, labels: Array) -> Array:
    """Cross-entropy between ``softmax(logits)`` and the labels, averaged over the batch.

    ``−Σᵢ tᵢ log softmax(a)ᵢ``, computed stably from logits (never from probabilities).

    Args:
      logits: array of shape ``(..., num_classes)``.
      labels: integer class indices of shape ``(...)``, or float (e.g. one-hot) targets of
        the same shape as ``logits``.

    Returns:
      A scalar.

    Raises:
      ShapeError: if the labels fit neither form.

    Example:
      >>> import jax.numpy as jnp, jaxnet as jn
      >>> float(jn.losses.softmax_cross_entropy(jnp.array([[0.0, 0.0]]), jnp.array([1])))
      0.6931...
    """
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if logits.ndim < 1 or labels.shape != logits.shape[:-1]:
            raise ShapeError(
                f"integer labels of shape {tuple(labels.shape)} need logits of shape "
                f"{(*labels.shape, 'num_classes')}, got {tuple(logits.shape)}",
                root="softmax_cross_entropy",
            )
        losses = optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels)
        return jnp.mean(losses)
    _same_shape(logits, labels, loss="softmax_cross_entropy", names="logits,one-hot labels")
    return jnp.mean(optax.losses.softmax_cross_entropy(logits, labels))


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    """Binary cross-entropy between ``sigmoid(logits)`` and 0/1 labels, averaged.

    ``−t log σ(a) − (1 − t) log(1 − σ(a))``, computed stably from logits.

    Args:
      logits: array of any shape.
      labels: 0/1 (or soft) targets of the same shape; any dtype.

    Returns:
      A scalar.

    Raises:
      ShapeError: if the shapes differ.
    """
    _same_shape(logits, labels, loss="sigmoid_binary_cross_entropy", names="logits,labels")
    labels = labels.astype(logits.dtype)
    return jnp.mean(optax.losses.sigmoid_binary_cross_entropy(logits, labels))
