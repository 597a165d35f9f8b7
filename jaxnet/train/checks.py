"""The checks ``fit`` runs on its arguments before it writes or compiles anything.

Each is a pure function of the arguments that returns nothing or raises one error saying which
argument is wrong, what was expected and what came, with the call to write instead:
``fit: optimizer must be an optax.GradientTransformation such as optax.adam(1e-3), got the
string 'adam'``. The data check compares the net's output shape (inferred abstractly, as
``init`` would) with the labels or targets, so a net with too few outputs fails here instead of
as a non-finite loss many steps later.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxnet import losses
from jaxnet.core import Layer, Shape, ShapeError, format_shape, is_shape, output_shape
from jaxnet.data import Dataset
from jaxnet.data.stream import Stream
from jaxnet.data.trees import batched_shape

_CLASS_SCORES = (losses.softmax_cross_entropy,)
"""Losses that read integer labels as indices into the last axis of the predictions."""
_ELEMENTWISE = (losses.mse, losses.sigmoid_binary_cross_entropy, losses.softmax_cross_entropy)
"""Losses that compare float targets with predictions of the same shape (one-hot ones too)."""


def _got(value: Any) -> str:
    """``the string 'adam'``, ``the function adam`` or ``int 3``: what was passed instead."""
    if isinstance(value, str):
        return f"the string {value!r}"
    if callable(value):
        return f"the function {getattr(value, '__name__', repr(value))}"
    return f"{type(value).__name__} {value!r}"


def check_optimizer(optimizer: Any) -> None:
    """``optimizer`` is an optax transformation: a pair of functions ``init`` and ``update``.

    Raises:
      TypeError: ``fit: optimizer must be an optax.GradientTransformation such as
        optax.adam(1e-3), got the string 'adam'`` (or the uncalled function ``optax.adam``).
    """
    if not (
        callable(getattr(optimizer, "init", None)) and callable(getattr(optimizer, "update", None))
    ):
        hint = (
            "; call it to make one"
            if callable(optimizer) and not isinstance(optimizer, str)
            else ""
        )
        raise TypeError(
            "fit: optimizer must be an optax.GradientTransformation such as optax.adam(1e-3), "
            f"got {_got(optimizer)}{hint}"
        )


def check_loss(loss: Any) -> None:
    """``loss`` is a function ``loss(predictions, targets) -> scalar``.

    Raises:
      TypeError: ``fit: loss must be a function loss(predictions, targets) such as
        jn.losses.mse, got the string 'mse'``.
    """
    if isinstance(loss, str) or not callable(loss):
        raise TypeError(
            "fit: loss must be a function loss(predictions, targets) such as jn.losses.mse, "
            f"got {_got(loss)}"
        )


def check_metrics(metrics: Any) -> None:
    """``metrics`` is None or a dict from names to functions ``metric(predictions, targets)``.

    Raises:
      TypeError: ``fit: metrics must be a dict name -> metric(predictions, targets) such as
        {'accuracy': jn.metrics.accuracy}, got list ['accuracy']``, or for one value
        ``fit: metrics['accuracy'] must be a function metric(predictions, targets) such as
        jn.metrics.accuracy, got the string 'accuracy'``.
    """
    if metrics is None:
        return
    if not isinstance(metrics, Mapping):
        raise TypeError(
            "fit: metrics must be a dict name -> metric(predictions, targets) such as "
            f"{{'accuracy': jn.metrics.accuracy}}, got {_got(metrics)}"
        )
    for name, metric in metrics.items():
        if not isinstance(name, str):
            raise TypeError(f"fit: metrics' names must be strings, got {_got(name)}")
        if isinstance(metric, str) or not callable(metric):
            raise TypeError(
                f"fit: metrics[{name!r}] must be a function metric(predictions, targets) such "
                f"as jn.metrics.accuracy, got {_got(metric)}"
            )


def check_seed(seed: Any) -> None:
    """``seed`` is an int (NumPy's too; bools are refused: ``seed=True`` is a slip).

    Raises:
      TypeError: ``fit: seed must be an int, got 1.5``.
    """
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"fit: seed must be an int, got {seed!r}")


def check_arguments(optimizer: Any, loss: Any, metrics: Any, seed: Any) -> None:
    """Every check of ``fit``'s optimizer, loss, metrics and seed, in that order."""
    check_optimizer(optimizer)
    check_loss(loss)
    check_metrics(metrics)
    check_seed(seed)


def input_output_shape(net: Layer, feature_shape: Any) -> Any:
    """The net's output shape for batches ``(None, *feature_shape)`` (for every part of tuple
    or dict features).

    Raises:
      ShapeError: if the net does not take them; for tuple or dict features also where the net
        refuses a tree of shapes (``fit: the net does not take inputs shaped {'left': (None,
        5), 'right': (None, 3)}: dense: input_shape must be a tuple of ints, ...``).
    """
    shape = batched_shape(feature_shape)
    try:
        return output_shape(net, shape)
    except TypeError as error:
        if is_shape(shape):
            raise
        raise ShapeError(
            f"the net does not take inputs shaped {format_shape(shape)}: {error}", root="fit"
        ) from None


def _is_known(shape: Any) -> bool:
    """Whether ``shape`` is an array shape (a tuple of ints, the batch axis maybe None)."""
    return isinstance(shape, tuple) and all(isinstance(d, int) for d in shape[1:])


def check_outputs_fit_data(net: Layer, data: Dataset, loss: Callable[..., Any]) -> None:
    """The net's outputs fit the data's labels or targets, for the losses whose reading of
    them is known (jaxnet's own; any other loss is left alone):

    * integer labels with ``softmax_cross_entropy``: the net outputs ``(batch, C)`` scores with
      ``C`` at least the number of classes (more is allowed: unused classes);
    * float targets of shape ``(n, *t)`` with ``mse``, ``sigmoid_binary_cross_entropy`` or
      ``softmax_cross_entropy`` (one-hot): the net outputs ``(batch, *t)``.

    Labels with ``sigmoid_binary_cross_entropy`` or ``mse`` are left to the loss's own shape
    check, which a single logit of shape ``(batch,)`` passes.

    Raises:
      ShapeError: if the net does not accept ``(batch, *data.feature_shape)`` (from ``init``).
      ValueError: ``fit: the data has 4 classes (labels 0..3) but the net outputs 3 values per
        example (output shape (None, 3)); give the last layer 4 units``, or the same for the
        width of regression targets.
    """
    out = input_output_shape(net, data.feature_shape)
    if not _is_known(out):
        return
    if data.num_classes is not None and any(loss is f for f in _CLASS_SCORES):
        _check_classes(out, data)
    elif data.num_classes is None and any(loss is f for f in _ELEMENTWISE):
        _check_targets(out, data, getattr(loss, "__name__", "the loss"))


def _values(n: int | None) -> str:
    return "1 value" if n == 1 else f"{n} values"


def _check_classes(out: Shape, data: Dataset) -> None:
    """Integer labels in ``[0, K)`` need ``(batch, C)`` scores with ``C >= K``."""
    assert data.num_classes is not None  # the caller checked
    labels = [y.max() for y in (data.y_train, data.y_test) if y.size]
    classes = max([data.num_classes, *(int(m) + 1 for m in labels)])
    if len(out) == 2 and out[1] is not None and out[1] < classes:
        raise ValueError(
            f"fit: the data has {classes} classes (labels 0..{classes - 1}) but the net outputs "
            f"{_values(out[1])} per example (output shape {format_shape(out)}); "
            f"give the last layer {classes} units"
        )


def _check_targets(out: Shape, data: Dataset, loss: str) -> None:
    """Float targets of shape ``(n, *t)`` need predictions of shape ``(batch, *t)``."""
    per_example = tuple(data.y_train.shape[1:])
    if tuple(out[1:]) == per_example:
        return
    shown = f"y_train shape {format_shape(data.y_train.shape)}"
    if len(out) == 2 and len(per_example) == 1:
        raise ValueError(
            f"fit: the targets have {_values(per_example[0])} per example ({shown}) but the "
            f"net outputs {_values(out[1])} per example (output shape {format_shape(out)}); "
            f"give the last layer {per_example[0]} units"
        )
    raise ValueError(
        f"fit: {loss} needs predictions shaped like the targets, "
        f"{format_shape((None, *per_example))} ({shown}), but the net outputs {format_shape(out)}"
    )


def check_outputs_fit_stream(net: Layer, data: Stream, loss: Callable[..., Any]) -> Stream:
    """:func:`check_outputs_fit_data` for a stream, from its first batch's shapes; returns
    the stream with ``num_classes`` filled in from the net's output width when it was left
    out (integer labels with ``softmax_cross_entropy``), so every batch's labels are checked
    against what the net can score.

    Raises:
      ShapeError: if the net does not accept ``(batch, *data.feature_shape)``.
      ValueError: as :func:`check_outputs_fit_data`.
    """
    out = input_output_shape(net, data.feature_shape)
    if not _is_known(out):
        return data
    labels = data.task == "classification" and data.spec.y_dtype == np.int32
    if labels and any(loss is f for f in _CLASS_SCORES) and len(out) >= 2 and out[-1]:
        if data.num_classes is None:
            return dataclasses.replace(data, num_classes=out[-1])
        if out[-1] < data.num_classes:
            raise ValueError(
                f"fit: the stream has {data.num_classes} classes but the net outputs "
                f"{_values(out[-1])} per example (output shape {format_shape(out)}); "
                f"give the last layer {data.num_classes} units"
            )
    elif not labels and any(loss is f for f in _ELEMENTWISE):
        per_example = data.spec.y_shape[1:]
        if tuple(out[1:]) != per_example:
            raise ValueError(
                f"fit: {getattr(loss, '__name__', 'the loss')} needs predictions shaped like "
                f"the targets, {format_shape((None, *per_example))} (the first batch's y "
                f"{format_shape(data.spec.y_shape)}), but the net outputs {format_shape(out)}"
            )
    return data
