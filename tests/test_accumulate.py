"""Gradient accumulation: ``make_train_step(..., accumulate=k)`` and ``fit(update=Update(k))``.

The reference is the update of the whole batch written by hand (``jax.grad`` of the mean loss,
then optax's rule): ``k`` micro-batches, averaged inside one compiled step, must give it to
float rounding, with one step counted.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.train.step import micro_batches

NET = jn.serial(jn.nn.Dense(16), jn.nn.Tanh, jn.nn.Dense(3))
LOSS = jn.losses.softmax_cross_entropy
METRICS = {"accuracy": jn.metrics.accuracy}


def _batch(n=32):
    x = jax.random.normal(jax.random.key(1), (n, 5))
    return x, jax.random.randint(jax.random.key(2), (n,), 0, 3)


def _hand_written_update(train_state, optimizer, x, y):
    """One step on the whole batch, by hand: the mean loss's gradient, optax's update."""

    def mean_loss(params):
        logits, _ = NET.apply(params, train_state.state, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    loss, grads = jax.value_and_grad(mean_loss)(train_state.params)
    updates, _ = optimizer.update(grads, train_state.opt_state, train_state.params)
    return optax.apply_updates(train_state.params, updates), loss


@pytest.mark.parametrize("k", [2, 4, 8])
def test_k_micro_batches_make_the_update_of_the_whole_batch(k):
    optimizer = optax.adam(1e-2)
    state = jn.train.TrainState.create(NET, optimizer, (None, 5), key=jax.random.key(0))
    x, y = _batch()
    step = jax.jit(jn.train.make_train_step(NET, LOSS, optimizer, metrics=METRICS, accumulate=k))
    new, metrics = step(state, (x, y))
    params, loss = _hand_written_update(state, optimizer, x, y)
    for got, want in zip(jax.tree.leaves(new.params), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-6)
    whole = jn.metrics.accuracy(NET.apply(state.params, state.state, x)[0], y)
    np.testing.assert_allclose(metrics["accuracy"], whole, rtol=1e-6)
    assert int(new.step) == 1  # one update, whatever k


def test_micro_batch_j_takes_every_kth_row():
    a = jnp.arange(12)
    np.testing.assert_array_equal(micro_batches(a, 3), [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11]])
    with pytest.raises(ValueError, match=r"^accumulate=5: a batch of 12 examples does not split"):
        micro_batches(a, 5)


def test_fit_with_accumulation_trains_the_params_of_fit_without():
    digits = jn.data.load("digits", val_fraction=0.1)
    kw = dict(
        optimizer=optax.adam(1e-2),
        loss=LOSS,
        metrics=METRICS,
        epochs=2,
        batch_size=64,
        progress=False,
    )
    net = jn.serial(jn.nn.Dense(32), jn.nn.Relu, jn.nn.Dense(10))
    plain = jn.train.fit(net, digits, **kw)
    accumulated = jn.train.fit(net, digits, update=jn.train.Update(accumulate=4), **kw)
    for p, q in zip(
        jax.tree.leaves(plain.train_state.params),
        jax.tree.leaves(accumulated.train_state.params),
        strict=True,
    ):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)
    assert [r["step"] for r in accumulated.history] == [r["step"] for r in plain.history]
    np.testing.assert_allclose(
        [r["train_loss"] for r in accumulated.history],
        [r["train_loss"] for r in plain.history],
        rtol=1e-4,
    )


def test_a_stream_batch_is_one_accumulated_update():
    digits = jn.data.load("digits", val_fraction=0.1)
    batches = [(digits.x_train[i : i + 64], digits.y_train[i : i + 64]) for i in range(0, 640, 64)]
    kw = dict(optimizer=optax.sgd(0.1), loss=LOSS, epochs=1, progress=False)
    plain = jn.train.fit(NET_10(), jn.data.stream(batches), **kw)
    update = jn.train.Update(accumulate=8)
    accumulated = jn.train.fit(NET_10(), jn.data.stream(batches), update=update, **kw)
    assert accumulated.history[-1]["step"] == 10
    for p, q in zip(
        jax.tree.leaves(plain.train_state.params),
        jax.tree.leaves(accumulated.train_state.params),
        strict=True,
    ):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


def NET_10():
    return jn.serial(jn.nn.Dense(8), jn.nn.Relu, jn.nn.Dense(10))


def test_dropout_draws_other_masks_for_each_micro_batch():
    net = jn.serial(jn.nn.Dense(8), jn.nn.Dropout(0.5), jn.nn.Dense(3))
    optimizer = optax.sgd(0.1)
    state = jn.train.TrainState.create(net, optimizer, (None, 5), key=jax.random.key(0))
    x, y = _batch(8)
    x = jnp.concatenate([x[:4], x[:4]])  # micro-batches of rows 0::2 and 1::2: the same rows
    y = jnp.concatenate([y[:4], y[:4]])
    x, y = x[jnp.array([0, 4, 1, 5, 2, 6, 3, 7])], y[jnp.array([0, 4, 1, 5, 2, 6, 3, 7])]

    def losses(params):  # the loss of each micro-batch, as the accumulated step draws them
        key = jn.train.step_key(state)
        out = []
        for j, (x_j, y_j) in enumerate(zip(micro_batches(x, 2), micro_batches(y, 2), strict=True)):
            logits, _ = net.apply(
                params, state.state, x_j, key=jax.random.fold_in(key, j), train=True
            )
            out.append(LOSS(logits, y_j))
        return out

    first, second = losses(state.params)
    assert float(first) != float(second)  # same rows, other dropout masks
    step = jax.jit(jn.train.make_train_step(net, LOSS, optimizer, accumulate=2))
    _, metrics = step(state, (x, y))
    np.testing.assert_allclose(metrics["loss"], (first + second) / 2, rtol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: jn.train.Update(accumulate=0),
            r"^Update: accumulate must be a positive int, got 0$",
        ),
        (
            lambda: jn.train.Update(accumulate=2.0),
            r"^Update: accumulate must be a positive int, got 2\.0$",
        ),
        (
            lambda: jn.train.make_train_step(NET, LOSS, optax.sgd(0.1), accumulate=True),
            r"^make_train_step: accumulate must be a positive int, got True$",
        ),
    ],
)
def test_bad_accumulate_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_fit_refuses_a_batch_that_does_not_split_and_a_bad_update():
    digits = jn.data.load("digits", val_fraction=0.1)
    kw = dict(optimizer=optax.sgd(0.1), loss=LOSS, epochs=1, progress=False)
    with pytest.raises(
        ValueError, match=r"^fit: batch_size=30 does not split into Update\(accumulate=4\) equal"
    ):
        jn.train.fit(NET_10(), digits, batch_size=30, update=jn.train.Update(accumulate=4), **kw)
    with pytest.raises(TypeError, match=r"^fit: update must be a jaxnet.train.Update"):
        jn.train.fit(NET_10(), digits, update={"accumulate": 4}, **kw)
