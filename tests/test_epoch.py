"""One epoch on the device: the fused and the stepwise epoch agree, fit picks between them, and
the test split is evaluated inside the epoch's call exactly as the host loop does."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn

fit_module = importlib.import_module("jaxnet.train.fit")

IRIS = jn.data.load("iris")
MLP = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
CNN = jn.serial(
    jn.nn.Reshape((4, 1, 1)), jn.nn.Conv(4, (2, 1), padding="SAME"), jn.nn.Relu, jn.nn.Flatten,
    jn.nn.Dense(3),
)  # fmt: skip
LOSS = jn.losses.softmax_cross_entropy


def _epochs(net, learning_rate, batch_size=16):
    optimizer = optax.sgd(learning_rate)
    step = jn.train.make_train_step(net, LOSS, optimizer, metrics={"acc": jn.metrics.accuracy})
    ts = jn.train.TrainState.create(net, optimizer, (None, 4), key=jax.random.key(3))
    fused = jax.jit(jn.train.make_epoch(step, batch_size), donate_argnums=0)
    stepwise = jn.train.make_stepwise_epoch(step, batch_size)
    x, y = jnp.asarray(IRIS.x_train), jnp.asarray(IRIS.y_train)
    return ts, fused, stepwise, x, y


def _close(a, b, rtol=1e-5, atol=1e-6):
    jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize("net", [MLP, CNN], ids=["mlp", "cnn"])
def test_stepwise_epoch_equals_the_fused_epoch(net):
    ts, fused, stepwise, x, y = _epochs(net, 0.1)
    a, b = ts, jax.tree.map(jnp.copy, ts)
    for epoch in range(2):
        a, metrics_a, finite_a = fused(a, x, y, jnp.int32(epoch))
        b, metrics_b, finite_b = stepwise(b, x, y, jnp.int32(epoch))
        assert metrics_b["loss"].shape == (IRIS.num_train // 16,)
        _close(metrics_a, metrics_b)
        np.testing.assert_array_equal(finite_a, finite_b)
        assert bool(finite_b.all())
    _close(a.params, b.params)
    assert int(a.step) == int(b.step) == 2 * (IRIS.num_train // 16)


def test_stepwise_epoch_stops_at_the_first_nonfinite_step_like_the_fused_one():
    exploding = jn.serial(jn.nn.Dense(8), jn.nn.Activation(jnp.exp, name="exp"), jn.nn.Dense(3))
    ts, fused, stepwise, x, y = _epochs(exploding, 10.0)
    a, _, finite_a = fused(jax.tree.map(jnp.copy, ts), x, y, jnp.int32(0))
    b, _, finite_b = stepwise(jax.tree.map(jnp.copy, ts), x, y, jnp.int32(0))
    np.testing.assert_array_equal(finite_a, finite_b)
    assert not finite_b.all() and finite_b[0]  # steps applied, then one went non-finite
    assert int(b.step) == int(np.argmin(finite_b)) == int(a.step)
    _close(a.params, b.params)
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree.leaves(b.params))


def _forward(net):
    _, params, state = net.init(jax.random.key(0), (None, 4))
    return lambda x: net.apply(params, state, x)[0], jax.ShapeDtypeStruct((2, 4), jnp.float32)


def test_contains_convolution_looks_inside_nested_programs():
    assert jn.train.contains_convolution(*_forward(CNN))
    assert not jn.train.contains_convolution(*_forward(MLP))
    conv, x = _forward(CNN)

    def in_scan(x):
        return jax.lax.scan(lambda c, xi: (c, conv(xi)), 0.0, x[None])[1]

    def in_cond(x):
        return jax.lax.cond(True, jax.jit(conv), lambda x: jnp.zeros((2, 3)), x)

    assert jn.train.contains_convolution(in_scan, x)
    assert jn.train.contains_convolution(in_cond, x)
    params, state = jn.train.TrainState.create(
        CNN, optax.sgd(0.1), (None, 4), key=jax.random.key(0)
    )[:2]
    assert jn.train.contains_convolution(CNN.apply, params, state, x, train=True)


def test_fit_runs_convolutions_stepwise_on_cpu_and_everything_else_fused():
    runs_fused = fit_module._runs_fused
    x = jax.ShapeDtypeStruct((16, 4), jnp.float32)
    on_cpu = jax.devices()[0].platform == "cpu"
    for net, default in ((MLP, True), (CNN, not on_cpu)):
        ts = jn.train.TrainState.create(net, optax.sgd(0.1), (None, 4), key=jax.random.key(0))
        assert runs_fused(None, net, ts, x, None) is default
        assert runs_fused(True, net, ts, x, None) is True
        assert runs_fused(False, net, ts, x, None) is False
    assert fit_module._check_fused(np.True_) is True
    with pytest.raises(TypeError, match="fit: fused must be True, False or None, got 'yes'"):
        fit_module._check_fused("yes")


def test_a_bad_fused_is_refused_before_the_run_folder_is_written(tmp_path):
    with pytest.raises(TypeError, match="fit: fused must be True, False or None, got 1"):
        _fit(MLP, fused=1, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_stepwise_epoch_with_no_full_batch_changes_nothing():
    ts, fused, stepwise, x, y = _epochs(MLP, 0.1)
    few = (x[:10], y[:10])  # fewer rows than one batch of 16: zero steps
    a, metrics_a, finite_a = fused(jax.tree.map(jnp.copy, ts), *few, jnp.int32(0))
    b, metrics_b, finite_b = stepwise(jax.tree.map(jnp.copy, ts), *few, jnp.int32(0))
    assert metrics_b["loss"].shape == metrics_a["loss"].shape == (0,)
    assert finite_b.shape == finite_a.shape == (0,)
    _close(b.params, ts.params)
    assert int(b.step) == int(a.step) == 0


def _fit(net, **kwargs):
    return jn.train.fit(
        net, IRIS, optimizer=optax.adam(0.01), loss=LOSS, epochs=2, batch_size=16,
        metrics={"accuracy": jn.metrics.accuracy}, progress=False, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize("net", [MLP, CNN], ids=["mlp", "cnn"])
def test_fit_fused_and_stepwise_train_the_same_model(net, default_optimizations):
    fused, stepwise = _fit(net, fused=True), _fit(net, fused=False)
    _close(fused.train_state.params, stepwise.train_state.params, rtol=1e-4, atol=1e-5)
    for a, b in zip(fused.history, stepwise.history, strict=True):
        assert a.keys() == b.keys() and a["step"] == b["step"]
        for key in ("train_loss", "train_accuracy", "test_loss", "test_accuracy"):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-4)


def test_fit_evaluates_the_test_split_as_the_host_loop_does():
    result = _fit(MLP)
    eval_step = jax.jit(
        jn.train.make_eval_step(MLP, LOSS, metrics={"accuracy": jn.metrics.accuracy})
    )
    expected = jn.train.evaluate(eval_step, result.train_state, IRIS.x_test, IRIS.y_test)
    row = result.history[-1]
    np.testing.assert_allclose(row["test_loss"], expected["loss"], rtol=1e-5)
    assert row["test_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)


@pytest.mark.parametrize("chunk", [7, 10, 30, 4096])  # 30 rows: a rest, none, one chunk, larger
def test_evaluate_traced_weights_chunks_by_size(chunk):
    ts = jn.train.TrainState.create(MLP, optax.sgd(0.1), (None, 4), key=jax.random.key(0))
    eval_step = jn.train.make_eval_step(MLP, LOSS, metrics={"accuracy": jn.metrics.accuracy})
    x, y = jnp.asarray(IRIS.x_test), jnp.asarray(IRIS.y_test)
    traced = jax.jit(lambda ts, x, y: fit_module.evaluate_traced(eval_step, ts, x, y, chunk))
    got = traced(ts, x, y)
    predictions, _ = MLP.apply(ts.params, ts.state, x)  # the whole split at once
    expected = {"loss": LOSS(predictions, y), "accuracy": jn.metrics.accuracy(predictions, y)}
    _close(got, expected)
    _close(jn.train.evaluate(jax.jit(eval_step), ts, x, y, batch_size=chunk), expected)


def test_grad_norm_is_reported_only_when_asked_for():
    ts = jn.train.TrainState.create(MLP, optax.sgd(0.1), (None, 4), key=jax.random.key(0))
    batch = (jnp.asarray(IRIS.x_train[:16]), jnp.asarray(IRIS.y_train[:16]))
    _, plain = jn.train.make_train_step(MLP, LOSS, optax.sgd(0.1))(ts, batch)
    assert sorted(plain) == ["loss"]
    step = jn.train.make_train_step(MLP, LOSS, optax.sgd(0.1), grad_norm=True)
    _, metrics = step(ts, batch)
    grads = jax.grad(lambda p: LOSS(MLP.apply(p, ts.state, batch[0])[0], batch[1]))(ts.params)
    expected = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads)))
    np.testing.assert_allclose(metrics["grad_norm"], expected, rtol=1e-5)


def test_unrolled_epoch_equals_the_rolled_one():
    ts, fused, _, x, y = _epochs(MLP, 0.1)
    step = jn.train.make_train_step(MLP, LOSS, optax.sgd(0.1), metrics={"acc": jn.metrics.accuracy})
    unrolled = jax.jit(jn.train.make_epoch(step, 16, unroll=4))  # 7 steps: 4 + a rest of 3
    a, metrics_a, finite_a = fused(jax.tree.map(jnp.copy, ts), x, y, jnp.int32(0))
    b, metrics_b, finite_b = unrolled(ts, x, y, jnp.int32(0))
    _close(a.params, b.params)
    _close(metrics_a, metrics_b)
    np.testing.assert_array_equal(finite_a, finite_b)
