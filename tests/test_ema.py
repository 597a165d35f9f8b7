"""A moving average of the weights: ``fit(update=Update(ema=decay))`` and ``with_ema``.

The reference is the recurrence written in NumPy, ``ema_t = d · ema_{t-1} + (1 - d) · p_t``
from ``ema_0 = p_0``, over the parameters of each step; the average must never change what is
trained, must be evaluated only when asked, and must come back bit for bit from a checkpoint.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from tests.helpers_training import (
    assert_same_leaves,
    fit_kwargs,
    hand_loop_start,
    host_leaves,
    load_digits,
    small_net,
)

LOSS = jn.losses.softmax_cross_entropy


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _kw(**extra):
    """``fit_kwargs`` with adam made by name (so that ``load`` can make it again) and batches
    of 64."""
    named = jn.train.optimizer("adam", learning_rate=1e-2)
    return fit_kwargs(optimizer=named, batch_size=64) | extra


def test_the_average_follows_the_numpy_recurrence(digits):
    decay, net = 0.8, small_net()
    optimizer = jn.train.with_ema(optax.sgd(0.1), decay)
    state = jn.train.TrainState.create(net, optimizer, (None, 64), key=jax.random.key(0))
    step = jax.jit(jn.train.make_train_step(net, LOSS, optimizer))
    # the reference: plain SGD written out (jax.value_and_grad, optax), the average in NumPy
    params, _, hand_step, sgd_state = hand_loop_start(net, LOSS, optax.sgd(0.1))
    expected = host_leaves(params)  # ema_0 = p_0
    for i in range(6):
        rows = slice(32 * i, 32 * (i + 1))
        x, y = digits.x_train[rows], digits.y_train[rows]
        state, _ = step(state, (x, y))
        params, sgd_state, _ = hand_step(params, sgd_state, x, y)
        new = host_leaves(params)
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, new, strict=True)]
    for got, want in zip(host_leaves(state.params), host_leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # the average changes none
    for got, want in zip(host_leaves(jn.train.ema_params(state.opt_state)), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_the_average_changes_nothing_trained_and_is_evaluated_only_when_asked(digits):
    plain = jn.train.fit(small_net(), digits, **_kw())
    kept = jn.train.fit(small_net(), digits, update=jn.train.Update(ema=0.9), **_kw())
    used = jn.train.fit(
        small_net(), digits, update=jn.train.Update(ema=0.9, evaluate_ema=True), **_kw()
    )
    for run in (kept, used):
        assert_same_leaves(run.train_state.params, plain.train_state.params)
    same = ["train_loss", "val_loss", "test_loss"]
    assert [[r[k] for k in same] for r in kept.history] == [
        [r[k] for k in same] for r in plain.history
    ]
    average = jn.train.ema_params(used.train_state.opt_state)
    val_loss = LOSS(small_net().apply(average, {}, digits.x_val)[0], digits.y_val)  # by hand
    np.testing.assert_allclose(used.history[-1]["val_loss"], val_loss, rtol=1e-6)
    assert used.history[-1]["val_loss"] != plain.history[-1]["val_loss"]


def test_the_average_resumes_bit_for_bit_and_load_gives_it(digits, tmp_path):
    update = jn.train.Update(ema=0.95, evaluate_ema=True)
    whole = jn.train.fit(
        small_net(), digits, update=update, run_dir=tmp_path / "whole", **_kw(epochs=4)
    )
    jn.train.fit(small_net(), digits, update=update, run_dir=tmp_path / "cut", **_kw(epochs=2))
    resumed = jn.train.fit(
        small_net(), digits, update=update, run_dir=tmp_path / "cut", resume=True, **_kw(epochs=4)
    )
    average = jn.train.ema_params(whole.train_state.opt_state)
    assert_same_leaves(jn.train.ema_params(resumed.train_state.opt_state), average)
    run = jn.train.load(tmp_path / "cut")  # the model is the average the run was judged by
    assert_same_leaves(run.params, average)
    raw = digits.x_test * digits.feature_std + digits.feature_mean
    accuracy = (run.predict(raw) == digits.y_test).mean()
    np.testing.assert_allclose(accuracy, resumed.history[-1]["test_accuracy"], rtol=1e-6)


def test_load_reads_the_average_when_the_optimizer_cannot_be_made_again(digits, tmp_path):
    update = jn.train.Update(ema=0.9, evaluate_ema=True)
    result = jn.train.fit(
        small_net(), digits, update=update, run_dir=tmp_path, **_kw(optimizer=optax.adam(1e-2))
    )
    run = jn.train.load(tmp_path)
    assert run.train_state is None  # an optax.adam made by hand: no optimizer to rebuild
    assert_same_leaves(run.params, jn.train.ema_params(result.train_state.opt_state))


def test_without_evaluate_ema_load_gives_the_trained_parameters(digits, tmp_path):
    result = jn.train.fit(
        small_net(), digits, update=jn.train.Update(ema=0.9), run_dir=tmp_path, **_kw(epochs=1)
    )
    run = jn.train.load(tmp_path)
    assert_same_leaves(run.params, result.train_state.params)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: jn.train.Update(ema=1.5),
            ValueError,
            r"^Update: ema must be a decay in \(0, 1\) such as 0\.999, got 1\.5$",
        ),
        (lambda: jn.train.Update(ema=0), ValueError, r"^Update: ema must be a decay in \(0, 1\)"),
        (
            lambda: jn.train.Update(ema=True),
            ValueError,
            r"^Update: ema must be a decay in \(0, 1\)",
        ),
        (
            lambda: jn.train.Update(evaluate_ema=True),
            ValueError,
            r"^Update: evaluate_ema=True needs ema=",
        ),
        (
            lambda: jn.train.Update(ema=0.9, evaluate_ema=1),
            TypeError,
            r"^Update: evaluate_ema must be True or False, got 1$",
        ),
        (
            lambda: jn.train.with_ema(optax.sgd(0.1), -0.1),
            ValueError,
            r"^with_ema: ema must be a decay",
        ),
        (
            lambda: jn.train.ema_params(optax.sgd(0.1).init({"w": jnp.ones(2)})),
            ValueError,
            r"^ema_params: the optimizer state holds no moving average",
        ),
    ],
)
def test_bad_averages_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_update_without_params_is_refused():
    optimizer = jn.train.with_ema(optax.sgd(0.1), 0.9)
    params = {"w": jnp.ones(2)}
    with pytest.raises(ValueError, match=r"^with_ema: update needs params, to average them$"):
        optimizer.update(params, optimizer.init(params))
