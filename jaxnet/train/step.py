"""The pure training and evaluation steps: backpropagation compiled by ``jax.grad``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jaxnet.core import Array, Layer
from jaxnet.optim.precision import DTYPES, cast_floating, check_precision, loss_scale_of
from jaxnet.optim.state import TrainState, step_key
from jaxnet.validate import positive_int

LossFn = Callable[[Array, Array], Array]
"""``loss(predictions, targets) -> scalar``, e.g. ``jn.losses.softmax_cross_entropy``."""
MetricFns = Mapping[str, Callable[[Array, Array], Array]]
"""Named ``metric(predictions, targets) -> scalar`` functions, e.g. ``{"accuracy": ...}``."""
Batch = tuple[Array, Array]
"""``(inputs, targets)``."""


def make_train_step(
    net: Layer,
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    metrics: MetricFns | None = None,
    precision: str | None = None,
    grad_norm: bool = False,
    accumulate: int = 1,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, Array]]]:
    """Build ``train_step(train_state, (x, y)) -> (train_state, metrics)``.

    One step is forward propagation in training mode, the loss, backpropagation
    (``jax.value_and_grad``) and the optimizer's update ``u ← u − η∇L(u)`` (for ``optax.sgd``).
    The function is pure: ``jit``, ``scan``, ``vmap`` or shard it as you like.

    Args:
      net: the network.
      loss_fn: ``loss(predictions, targets) -> scalar``.
      optimizer: the optax transformation whose state lives in ``train_state.opt_state``.
      metrics: extra ``name -> metric(predictions, targets)`` to report.
      precision: the compute dtype, ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``
        (see :mod:`jaxnet.optim.precision`); float16 needs an optimizer wrapped in
        :func:`jaxnet.train.dynamic_loss_scale`. Parameters and the loss stay float32.
      grad_norm: also report ``grad_norm``, the global L2 norm of the gradient (one more
        pass over the gradients: 2-10% of a small step on CPU, so off unless asked for).
      accumulate: split each batch into this many micro-batches, run one after another in an
        inner ``lax.scan`` (forward and backward of ``batch / accumulate`` examples at a
        time: that much activation memory), their gradients averaged into one update. For a
        net without batch statistics this is the step on the whole batch, to float rounding
        (the loss is a mean over examples); BatchNorm sees each micro-batch in turn. Dropout
        draws micro-batch ``j``'s masks from the step's key folded with ``j``.

    Returns:
      The step. Its metrics hold ``loss``, ``grad_norm`` when asked for, and each of
      ``metrics``, computed on the batch before the update (with ``accumulate``, the mean over
      the micro-batches, which are equal in size). ``train_state.step`` counts updates.

    Raises:
      ValueError: for an unknown precision, ``accumulate`` not a positive int, and (when
        traced) a batch that does not split into ``accumulate`` equal micro-batches.
      TypeError: (when traced) a train state whose optimizer state another optimizer made.

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(4), jn.nn.Tanh, jn.nn.Dense(1))
      >>> ts = jn.train.TrainState.create(net, optax.sgd(0.1), (None, 2), key=jax.random.key(0))
      >>> step = jn.train.make_train_step(net, jn.losses.mse, optax.sgd(0.1), grad_norm=True)
      >>> step = jax.jit(step)
      >>> ts, m = step(ts, (jnp.ones((8, 2)), jnp.zeros((8, 1))))
      >>> int(ts.step), sorted(m)
      (1, ['grad_norm', 'loss'])
    """
    metrics = dict(metrics or {})
    precision = check_precision(precision)
    accumulate = check_accumulate(accumulate, "make_train_step")

    def loss_and_outputs(
        params: Any, train_state: TrainState, x: Array, y: Array, key: Array
    ) -> Any:
        predictions, new_state = _forward(net, params, train_state.state, x, key, True, precision)
        loss = loss_fn(predictions, y)
        scaled = loss * loss_scale_of(train_state.opt_state, precision)  # 1 unless float16
        return scaled, (loss, predictions, new_state)

    def gradients(train_state: TrainState, x: Array, y: Array, key: Array) -> Any:
        """The batch's gradients, the net's new state and the metrics before the update."""
        (_, (loss, predictions, new_state)), grads = jax.value_and_grad(
            loss_and_outputs, has_aux=True
        )(train_state.params, train_state, x, y, key)
        report = {"loss": loss} | {name: fn(predictions, y) for name, fn in metrics.items()}
        return grads, new_state, report

    def accumulated(train_state: TrainState, x: Array, y: Array) -> Any:
        """`gradients` of ``accumulate`` micro-batches in turn, averaged."""
        xs = jax.tree.map(lambda a: micro_batches(a, accumulate), x)  # x may be a tuple or dict
        ys = micro_batches(y, accumulate)
        key = step_key(train_state)

        def micro(carry: Any, inputs: Any) -> Any:
            total, state = carry
            j, x_j, y_j = inputs
            grads, state, report = gradients(
                train_state._replace(state=state), x_j, y_j, jax.random.fold_in(key, j)
            )
            return (jax.tree.map(jnp.add, total, grads), state), report

        zeros = jax.tree.map(jnp.zeros_like, train_state.params)
        steps = jnp.arange(accumulate)
        (total, new_state), reports = jax.lax.scan(
            micro, (zeros, train_state.state), (steps, xs, ys)
        )
        grads = jax.tree.map(lambda g: g / accumulate, total)
        return grads, new_state, jax.tree.map(lambda v: v.mean(0), reports)

    def train_step(train_state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, Array]]:
        x, y = batch
        if accumulate == 1:
            grads, new_state, report = gradients(train_state, x, y, step_key(train_state))
        else:
            grads, new_state, report = accumulated(train_state, x, y)
        _check_optimizer_state(optimizer, train_state)
        updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
        params = optax.apply_updates(train_state.params, updates)
        if grad_norm:
            scale = loss_scale_of(train_state.opt_state, precision)
            report = {"loss": report["loss"], "grad_norm": optax.tree.norm(grads) / scale} | report
        new = TrainState(params, new_state, opt_state, train_state.step + 1, train_state.key)
        return new, report

    return train_step


def _check_optimizer_state(optimizer: optax.GradientTransformation, train_state: Any) -> None:
    """Refuse, at trace time, a train state whose optimizer state was made by another
    optimizer than the step's: optax would fail deep inside (``'ScaleByAdamState' object has
    no attribute 'trace'``). Compares the tree structure ``optimizer.init`` makes (abstractly,
    with ``jax.eval_shape``: nothing is computed) with the state's."""
    expected = jax.eval_shape(optimizer.init, train_state.params)
    made: Any = jax.tree.structure(expected)
    if made == jax.tree.structure(train_state.opt_state):
        return
    raise TypeError(
        "make_train_step: train_state.opt_state was made by another optimizer than the "
        f"step's: it holds {_state_kinds(train_state.opt_state)}, the step's optimizer makes "
        f"{_state_kinds(expected)}; create the state with the step's optimizer "
        "(jn.train.TrainState.create(net, optimizer, ...))"
    )


def _state_kinds(opt_state: Any) -> str:
    """The optax state classes in ``opt_state``, in tree order: ``ScaleByAdamState,
    EmptyState``."""

    def is_state(node: Any) -> bool:
        return isinstance(node, tuple) and hasattr(node, "_fields")

    kinds = [type(n).__name__ for n in jax.tree.leaves(opt_state, is_leaf=is_state) if is_state(n)]
    return ", ".join(dict.fromkeys(kinds)) or "no optax state"


def check_accumulate(accumulate: Any, caller: str) -> int:
    """``accumulate`` as an int >= 1; a ValueError naming ``caller`` otherwise."""
    return positive_int(accumulate, "accumulate", owner=caller)


def micro_batches(a: Array, k: int) -> Array:
    """``a`` of ``(k * m, ...)`` as ``k`` micro-batches ``(k, m, ...)``: micro-batch ``j`` is
    rows ``j, j + k, j + 2k, ...``, so on a batch split across devices each micro-batch is
    too (every device holds ``m / devices`` rows of each) and the reshape moves no data."""
    n = a.shape[0]
    if n % k:
        raise ValueError(
            f"accumulate={k}: a batch of {n} examples does not split into {k} equal micro-batches"
        )
    return jnp.swapaxes(a.reshape(n // k, k, *a.shape[1:]), 0, 1)


def _forward(
    net: Layer,
    params: Any,
    state: Any,
    x: Array,
    key: Array | None,
    train: bool,
    precision: str,
) -> tuple[Array, Any]:
    """``net.apply`` in the compute dtype; predictions and new state come back in float32."""
    if precision == "float32":
        return net.apply(params, state, x, key=key, train=train)
    dtype = DTYPES[precision]
    predictions, new_state = net.apply(
        cast_floating(params, dtype),
        cast_floating(state, dtype),
        cast_floating(x, dtype),
        key=key,
        train=train,
    )
    return cast_floating(predictions, jnp.float32), cast_floating(new_state, jnp.float32)


def make_eval_step(
    net: Layer, loss_fn: LossFn, *, metrics: MetricFns | None = None, precision: str | None = None
) -> Callable[[TrainState, Batch], dict[str, Array]]:
    """Build ``eval_step(train_state, (x, y)) -> metrics``: inference mode, no update.

    Dropout is off and BatchNorm uses its running statistics (``train=False``).

    Example:
      >>> import jax, jax.numpy as jnp, optax, jaxnet as jn
      >>> net = jn.nn.Dense(1)
      >>> ts = jn.train.TrainState.create(net, optax.sgd(0.1), (None, 2), key=jax.random.key(0))
      >>> evaluate = jax.jit(jn.train.make_eval_step(net, jn.losses.mse))
      >>> sorted(evaluate(ts, (jnp.ones((4, 2)), jnp.zeros((4, 1)))))
      ['loss']
    """
    metrics = dict(metrics or {})
    precision = check_precision(precision)

    def eval_step(train_state: TrainState, batch: Batch) -> dict[str, Array]:
        x, y = batch
        predictions, _ = _forward(
            net, train_state.params, train_state.state, x, None, False, precision
        )
        report = {"loss": loss_fn(predictions, y)}
        return report | {name: fn(predictions, y) for name, fn in metrics.items()}

    return eval_step
