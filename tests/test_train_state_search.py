"""``find_states``: the one search for a state class inside a wrapped optax state.

``ema_params`` and ``lr_scale`` find their states through it, so it must see through
``optax.chain`` and ``optax.masked``, keep tree order, and return ``[]`` where there is none.
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

import jaxnet as jn
from jaxnet.optim.state import find_states

PARAMS = {"a": jnp.ones(2), "b": jnp.full(3, 2.0)}


def test_finds_states_inside_chain_and_masked() -> None:
    optimizer = optax.chain(
        optax.clip(1.0),
        optax.masked(jn.train.with_ema(optax.sgd(0.1), 0.5), {"a": True, "b": False}),
        jn.train.with_lr_scale(optax.adam(0.1)),
    )
    state = optimizer.init(PARAMS)
    (ema,) = find_states(state, jn.train.EmaState)
    assert ema.ema["a"].tolist() == [1.0, 1.0]  # the average starts at the params
    (scale,) = find_states(state, jn.train.LrScaleState)
    assert float(scale.scale) == 1.0
    assert [int(s.count) for s in find_states(state, optax.ScaleByAdamState)] == [0]


def test_several_found_in_tree_order() -> None:
    first, second = jn.train.with_ema(optax.sgd(0.1), 0.5), jn.train.with_ema(optax.sgd(0.1), 0.9)
    state = optax.chain(first, second).init(PARAMS)
    found = find_states(state, jn.train.EmaState)
    assert len(found) == 2
    assert all(isinstance(s, jn.train.EmaState) for s in found)
    assert found[0] is state[0] and found[1] is state[1]


def test_returns_empty_list_when_absent() -> None:
    state = optax.chain(optax.clip(1.0), optax.sgd(0.1)).init(PARAMS)
    assert find_states(state, jn.train.EmaState) == []
    assert find_states({}, jn.train.LrScaleState) == []
