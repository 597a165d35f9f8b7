"""Dropout: drop_rate means dropped, inverted scaling, keys, combinators, vmap, jit and grad."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.core import _child_key
from jaxnet.nn.dropout import MISSING_KEY, Dropout
from jaxnet.nn.linear import Dense
from tests import contract
from tests.contract import Case

CASES = [Case("dropout_evaluation", Dropout(0.3), (2, 3), lambda p, x: x)]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


def _train(layer, x, key):
    return layer.apply({}, {}, x, key=key, train=True)[0]


def test_evaluation_is_the_identity_and_needs_no_key(key):
    layer = Dropout(0.5)
    shape, params, state = layer.init(key, (None, 3, 4))
    assert (shape, params, state) == ((None, 3, 4), {}, {})
    x = jax.random.normal(key, (2, 3, 4))
    y, new_state = layer.apply(params, state, x)
    assert y is x and new_state is state
    assert layer.apply(params, state, x, key=key, train=False)[0] is x


@pytest.mark.parametrize("drop_rate", [0.1, 0.5, 0.9])
def test_training_drops_the_stated_fraction_and_keeps_the_mean(drop_rate, key):
    x = jnp.full((400, 250), 3.0)  # 100,000 entries: the fraction's std is below 0.002
    y = _train(Dropout(drop_rate), x, key)
    dropped = float(jnp.mean(y == 0.0))
    assert abs(dropped - drop_rate) < 0.01
    survivors = y[y != 0.0]
    np.testing.assert_allclose(survivors, 3.0 / (1.0 - drop_rate), rtol=1e-6)  # inverted dropout
    assert abs(float(y.mean()) - 3.0) < 0.1


def test_the_same_key_gives_the_same_mask_and_another_key_another(key):
    layer = Dropout(0.5)
    x = jnp.ones((8, 16))
    first = _train(layer, x, key)
    np.testing.assert_array_equal(first, _train(layer, x, key))
    assert not np.array_equal(first, _train(layer, x, jax.random.key(1)))


def test_two_dropouts_in_serial_draw_different_masks_from_one_key(key):
    net = jn.serial(Dropout(0.5), Dropout(0.5))
    x = jnp.ones((16, 32))
    outputs = jn.intermediates(net, {}, {}, x, key=key, train=True)
    first, second = outputs["serial/dropout_0"], outputs["serial"]
    # Each child's key is the parent's folded with the child's name.
    np.testing.assert_array_equal(first, _train(Dropout(0.5), x, _child_key(key, "dropout_0")))
    np.testing.assert_array_equal(second, _train(Dropout(0.5), first, _child_key(key, "dropout_1")))
    # With one shared mask every survivor of the first would survive the second too.
    kept_by_first = first != 0
    kept_by_both = second != 0
    assert 0.3 < float(jnp.sum(kept_by_both) / jnp.sum(kept_by_first)) < 0.7
    np.testing.assert_array_equal(second[kept_by_both], 4.0)


def test_vmap_over_keys_gives_each_member_its_own_mask(key):
    layer = Dropout(0.5)
    x = jnp.ones((4, 8))
    keys = jax.random.split(key, 3)
    ys = jax.vmap(lambda k: _train(layer, x, k))(keys)
    assert ys.shape == (3, 4, 8)
    for i in range(3):
        np.testing.assert_array_equal(ys[i], _train(layer, x, keys[i]))
    assert not np.array_equal(ys[0], ys[1]) and not np.array_equal(ys[1], ys[2])


def test_zero_drop_rate_is_exactly_the_identity(key):
    x = jax.random.normal(key, (5, 7))
    np.testing.assert_array_equal(_train(Dropout(0.0), x, key), x)
    np.testing.assert_array_equal(_train(Dropout(0), x, key), x)


def test_jit_matches_eager_and_the_gradient_is_zero_exactly_where_dropped(key):
    layer = Dropout(0.25)
    x = jax.random.normal(jax.random.key(1), (6, 10))
    eager = _train(layer, x, key)
    np.testing.assert_array_equal(jax.jit(_train, static_argnums=0)(layer, x, key), eager)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(_train(layer, x, key))))(x)
    kept = eager != 0
    np.testing.assert_array_equal(grad, jnp.where(kept, 1.0 / 0.75, 0.0))
    assert 0 < int(jnp.sum(~kept)) < x.size


def test_the_train_step_passes_a_key_for_dropout(key):
    net = jn.serial(Dense(8), Dropout(0.5), Dense(1))
    optimizer = optax.sgd(0.1)
    ts = jn.train.TrainState.create(net, optimizer, (None, 3), key=key)
    batch = (jnp.ones((4, 3)), jnp.zeros((4, 1)))
    new, metrics = jax.jit(jn.train.make_train_step(net, jn.losses.mse, optimizer))(ts, batch)
    assert int(new.step) == 1 and bool(jnp.isfinite(metrics["loss"]))


def test_training_without_a_key_says_how_to_fix_it():
    expected = (
        "dropout: train=True needs a PRNG key to draw the dropout mask, got key=None. "
        "Pass one to apply: net.apply(params, state, x, key=jax.random.key(0), train=True) "
        "(jn.train.fit and jn.train.make_train_step pass a fresh key every step for you); "
        "for evaluation use train=False, which needs no key."
    )
    assert expected == MISSING_KEY
    with pytest.raises(ValueError, match=re.escape(expected)):
        Dropout(0.5).apply({}, {}, jnp.ones((2, 3)), train=True)
    with pytest.raises(ValueError, match=re.escape(expected)):
        jn.serial(Dense(2), Dropout(0.0)).apply(
            {"dense_0": {"w": jnp.ones((3, 2)), "b": jnp.zeros(2)}},
            {},
            jnp.ones((2, 3)),
            train=True,
        )


@pytest.mark.parametrize(
    ("drop_rate", "error", "message"),
    [
        (1.0, ValueError, "dropout: drop_rate must be in [0, 1), got 1.0"),
        (1.5, ValueError, "dropout: drop_rate must be in [0, 1), got 1.5"),
        (-0.1, ValueError, "dropout: drop_rate must be in [0, 1), got -0.1"),
        (float("nan"), ValueError, "dropout: drop_rate must be in [0, 1), got nan"),
        (True, TypeError, "dropout: drop_rate must be a number, got bool True"),
        ("0.5", TypeError, "dropout: drop_rate must be a number, got str '0.5'"),
        (None, TypeError, "dropout: drop_rate must be a number, got NoneType None"),
    ],
)
def test_drop_rate_is_validated_at_construction(drop_rate, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Dropout(drop_rate)
