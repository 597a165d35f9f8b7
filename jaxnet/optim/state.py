"""``TrainState``: everything a training run changes, as one pytree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import optax

from jaxnet.core import Array, Layer, Params, State

_Kind = TypeVar("_Kind")


class TrainState(NamedTuple):
    """One pytree holding a run's params, layer state, optimizer state, step and PRNG key.

    Being a plain pytree (a NamedTuple), it passes through ``jit``, ``scan``, ``vmap``,
    sharding and orbax checkpoints as it is; its paths read ``params/dense_0/w``.

    Attributes:
      params: trainable parameters (nested dict of arrays).
      state: non-trainable layer state (BatchNorm statistics), ``{}`` for most nets.
      opt_state: the optax optimizer's state.
      step: the number of updates applied so far, an int32 scalar.
      key: the run's PRNG key (typed). It never changes: step ``s`` draws its randomness (dropout)
        from :func:`step_key` and epoch ``e`` its shuffle from :func:`epoch_key`, both folded
        from this key, so a resumed run sees the same randomness as one that never stopped.
    """

    params: Params
    state: State
    opt_state: optax.OptState
    step: Array
    key: Array

    @classmethod
    def create(
        cls,
        net: Layer,
        optimizer: optax.GradientTransformation,
        input_shape: Sequence[int | None],
        *,
        key: Array,
    ) -> TrainState:
        """Initialize the net's params and state and the optimizer's state.

        Args:
          net: the network.
          optimizer: any optax transformation (schedules, clipping, chains).
          input_shape: the input shape, batch first (the batch size may be ``None``).
          key: a typed PRNG key (``jax.random.key(seed)``); split into an init key and the run key.

        Example:
          >>> import jax, optax, jaxnet as jn
          >>> ts = jn.train.TrainState.create(
          ...     jn.nn.Dense(2), optax.sgd(0.1), (None, 3), key=jax.random.key(0))
          >>> int(ts.step), sorted(ts.params)
          (0, ['b', 'w'])
        """

        def build(key: Array) -> TrainState:
            init_key, run_key = jax.random.split(key)
            _, params, state = net.init(init_key, input_shape)
            return cls(params, state, optimizer.init(params), jnp.zeros((), jnp.int32), run_key)

        return jax.jit(build)(key)  # one compiled call: eager init dispatches op by op


_STEP_STREAM, _EPOCH_STREAM = 0, 1  # two independent streams folded from the run key


def step_key(train_state: TrainState) -> Any:
    """The PRNG key of the current step (for dropout): the run key folded with the step."""
    return jax.random.fold_in(jax.random.fold_in(train_state.key, _STEP_STREAM), train_state.step)


def epoch_key(run_key: Array, epoch: Array | int) -> Any:
    """The PRNG key that shuffles epoch ``epoch``: the run key folded with the epoch number."""
    return jax.random.fold_in(jax.random.fold_in(run_key, _EPOCH_STREAM), epoch)


def find_states(opt_state: Any, kind: type[_Kind]) -> list[_Kind]:
    """The states of type ``kind`` inside ``opt_state``, in tree order.

    Wrappers (:func:`jaxnet.train.with_ema`, ``optax.chain``, ``optax.masked``, ...) nest the
    states they wrap; this finds a ``kind`` (a NamedTuple state class) at any depth. It does not
    look inside a state it found, so of a ``kind`` wrapped in another of the same ``kind`` only
    the outer one is returned.

    Args:
      opt_state: an optax optimizer state, however wrapped.
      kind: the state class to look for, such as :class:`jaxnet.train.EmaState`.

    Returns:
      The states of type ``kind``; ``[]`` where there is none.

    Example:
      >>> import jax.numpy as jnp, optax
      >>> state = optax.chain(optax.clip(1.0), optax.adam(0.1)).init({"w": jnp.zeros(2)})
      >>> [int(found.count) for found in find_states(state, optax.ScaleByAdamState)]
      [0]
      >>> find_states(optax.sgd(0.1).init({"w": jnp.zeros(2)}), optax.ScaleByAdamState)
      []
    """

    def is_kind(node: Any) -> bool:
        return isinstance(node, kind)

    return [node for node in jax.tree.leaves(opt_state, is_leaf=is_kind) if is_kind(node)]
