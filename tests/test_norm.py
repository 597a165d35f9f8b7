"""BatchNorm, LayerNorm, GroupNorm and RMSNorm: the contract, NumPy references (PyTorch's
documented formulas for GroupNorm and RMSNorm), running statistics, every error message."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.nn.linear import Dense
from jaxnet.nn.norm import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from tests import contract
from tests.contract import Case

EPS = 1e-5
RANDOM = jn.nn.initializer("normal", stddev=1.0)  # random scale and bias, for the reference


def exact(message: str) -> str:
    """A pattern that matches ``message`` and nothing more."""
    return f"(?m)^{re.escape(message)}$"  # (?m): under jit JAX appends a note after a newline


# ----------------------------------------------------------------------------- references


def _channels_last(x, axis):
    return np.moveaxis(np.asarray(x, np.float64), axis, -1)


def ref_batch_stats(x, axis=-1):
    """Per-channel mean and biased variance, summed row by row."""
    rows = _channels_last(x, axis).reshape(-1, np.shape(x)[axis])
    n = rows.shape[0]
    mean = sum(row for row in rows) / n
    var = sum((row - mean) ** 2 for row in rows) / n
    return mean, var


def ref_batch_norm(params, x, mean, var, axis=-1, epsilon=EPS):
    """(x − mean)/√(var + ε) · scale + bias, one channel at a time."""
    x = _channels_last(x, axis)
    channels = x.shape[-1]
    scale = np.asarray(params.get("scale", np.ones(channels)), np.float64)
    bias = np.asarray(params.get("bias", np.zeros(channels)), np.float64)
    out = np.empty_like(x)
    for c in range(channels):
        out[..., c] = (x[..., c] - mean[c]) / np.sqrt(var[c] + epsilon) * scale[c] + bias[c]
    return np.moveaxis(out, -1, axis)


def ref_batch_norm_eval_initial(axis=-1):
    """Evaluation mode with the initial running statistics (mean 0, var 1)."""

    def reference(params, x):
        channels = x.shape[axis]
        return ref_batch_norm(params, x, np.zeros(channels), np.ones(channels), axis)

    return reference


def ref_batch_norm_train(axis=-1):
    def reference(params, x):
        return ref_batch_norm(params, x, *ref_batch_stats(x, axis), axis)

    return reference


def ref_layer_norm(params, x, epsilon=EPS):
    """Each row of the last axis normalized on its own, with explicit loops."""
    x = np.asarray(x, np.float64)
    features = x.shape[-1]
    scale = np.asarray(params.get("scale", np.ones(features)), np.float64)
    bias = np.asarray(params.get("bias", np.zeros(features)), np.float64)
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape[:-1]):
        row = x[index]
        mean = sum(row) / features
        var = sum((v - mean) ** 2 for v in row) / features
        out[index] = (row - mean) / np.sqrt(var + epsilon) * scale + bias
    return out


def torch_group_norm(x, num_groups, weight, bias, eps=EPS):
    """``torch.nn.GroupNorm(num_groups, C, eps)`` on channels-first ``(N, C, *)``, as its
    documentation writes it: each example's channels in ``num_groups`` groups, mean and biased
    variance over a group's channels and positions, ε inside the square root, then a weight and
    bias per channel."""
    x = np.asarray(x, np.float64)
    n, c = x.shape[:2]
    out = np.empty_like(x)
    size = c // num_groups
    for i in range(n):
        for g in range(num_groups):
            group = x[i, g * size : (g + 1) * size]  # (C/G, *)
            mean = group.mean()
            var = ((group - mean) ** 2).mean()
            out[i, g * size : (g + 1) * size] = (group - mean) / np.sqrt(var + eps)
    affine = (1, c) + (1,) * (x.ndim - 2)
    return out * np.reshape(weight, affine) + np.reshape(bias, affine)


def ref_group_norm(num_groups, epsilon=EPS):
    """GroupNorm channels last: PyTorch's formula on the input moved to channels first."""

    def reference(params, x):
        channels = x.shape[-1]
        weight = np.asarray(params.get("scale", np.ones(channels)), np.float64)
        bias = np.asarray(params.get("bias", np.zeros(channels)), np.float64)
        y = torch_group_norm(np.moveaxis(x, -1, 1), num_groups, weight, bias, epsilon)
        return np.moveaxis(y, 1, -1)

    return reference


def ref_rms_norm(params, x, epsilon=1e-6):
    """``torch.nn.RMSNorm(C, eps)``: ``x / √(mean(x²) + ε) · weight``, row by row."""
    x = np.asarray(x, np.float64)
    weight = np.asarray(params.get("scale", np.ones(x.shape[-1])), np.float64)
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape[:-1]):
        row = x[index]
        out[index] = row / np.sqrt(sum(v * v for v in row) / row.size + epsilon) * weight
    return out


def _always_training(layer: jn.Layer) -> jn.Layer:
    """The layer with train=True forced, so the contract checks the training path."""

    def apply(params, state, x, *, key=None, train=False):
        return layer.apply(params, state, x, key=key, train=True)

    return jn.Layer(layer.init, apply, layer.name)


# ----------------------------------------------------------------------------- contract

EVAL_CASES = [
    Case(
        "batch_norm_random_affine",
        BatchNorm(scale_init=RANDOM, bias_init=RANDOM),
        (2, 3, 3, 2),
        ref_batch_norm_eval_initial(),
    ),
    Case(
        "batch_norm_channels_first_no_affine",
        BatchNorm(axis=1, use_scale=False, use_bias=False),
        (2, 3, 4),
        ref_batch_norm_eval_initial(axis=1),
    ),
    Case(
        "layer_norm_random_affine",
        LayerNorm(scale_init=RANDOM, bias_init=RANDOM),
        (2, 3, 4),
        ref_layer_norm,
    ),
    Case(
        "group_norm_random_affine",
        GroupNorm(2, scale_init=RANDOM, bias_init=RANDOM),
        (2, 3, 2, 4),
        ref_group_norm(2),
        tolerance=1e-4,
    ),
    Case("rms_norm_random_scale", RMSNorm(scale_init=RANDOM), (2, 3, 4), ref_rms_norm),
]

# More settings, against the reference only (their code paths are the cases' above).
REFERENCE_CASES = [
    Case(  # one group per channel (instance normalization) on a sequence, a bias but no scale
        "group_norm_instance_sequence_no_scale",
        GroupNorm(3, use_scale=False, bias_init=RANDOM),
        (2, 5, 3),
        ref_group_norm(3),
        tolerance=1e-4,
    ),
]

# BatchNorm's training path couples the examples of a batch, so applying it to one example at
# a time (the vmap check) rightly gives something else; every other check applies, except the
# config round trip: ``_always_training`` is a test's wrapper written by hand (the EVAL_CASES
# round-trip the same BatchNorm settings).
TRAIN_CHECKS = [
    c
    for c in contract.CHECKS
    if c
    not in (contract.check_vmap_over_batch_equals_batched_apply, contract.check_config_round_trip)
]
TRAIN_CASES = [
    Case(
        "batch_norm_train",
        _always_training(BatchNorm(scale_init=RANDOM, bias_init=RANDOM)),
        (2, 3, 3),
        ref_batch_norm_train(),
        tolerance=1e-4,
    ),
    Case(  # PyTorch's running variance: the output is the same, normalized by the biased σ²
        "batch_norm_train_unbiased_running_var",
        _always_training(BatchNorm(running_var="unbiased", axis=1)),
        (2, 3, 3),
        ref_batch_norm_train(axis=1),
        tolerance=1e-4,
    ),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", EVAL_CASES, ids=[c.id for c in EVAL_CASES])
def test_contract(case, check, key):
    check(case, key)


@pytest.mark.parametrize("check", contract.REFERENCE_CHECKS, ids=contract.REFERENCE_CHECK_IDS)
@pytest.mark.parametrize("case", REFERENCE_CASES, ids=[c.id for c in REFERENCE_CASES])
def test_more_settings_match_the_reference(case, check, key):
    check(case, key)


@pytest.mark.parametrize(
    "check", TRAIN_CHECKS, ids=[c.__name__.removeprefix("check_") for c in TRAIN_CHECKS]
)
@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c.id for c in TRAIN_CASES])
def test_contract_training_path(case, check, key):
    check(case, key)


# ----------------------------------------------------------------------------- BatchNorm


def test_batch_norm_params_and_state_shapes(key):
    out_shape, params, state = BatchNorm().init(key, (None, 8, 8, 5))
    assert out_shape == (None, 8, 8, 5)
    assert jax.tree.map(jnp.shape, params) == {"scale": (5,), "bias": (5,)}
    assert jax.tree.map(jnp.shape, state) == {"mean": (5,), "var": (5,)}
    np.testing.assert_array_equal(state["mean"], np.zeros(5))
    np.testing.assert_array_equal(state["var"], np.ones(5))
    np.testing.assert_array_equal(params["scale"], np.ones(5))
    np.testing.assert_array_equal(params["bias"], np.zeros(5))
    assert BatchNorm(axis=1).init(key, (2, 7, 4, 4))[2]["mean"].shape == (7,)
    assert BatchNorm(use_scale=False).init(key, (2, 3))[1].keys() == {"bias"}


def test_batch_norm_state_update_formula_exactly(key):
    layer = BatchNorm(momentum=0.75)
    _, params, state = layer.init(key, (2, 1))
    x = jnp.array([[0.0], [4.0]])  # batch mean 2; biased variance 4 (the unbiased one is 8)
    _, new_state = layer.apply(params, state, x, train=True)
    assert float(new_state["mean"][0]) == 0.75 * 0.0 + 0.25 * 2.0  # 0.5
    assert float(new_state["var"][0]) == 0.75 * 1.0 + 0.25 * 4.0  # 1.75, not 2.75
    _, newer = layer.apply(params, new_state, x, train=True)
    assert float(newer["mean"][0]) == 0.75 * 0.5 + 0.25 * 2.0
    assert float(newer["var"][0]) == 0.75 * 1.75 + 0.25 * 4.0


def test_batch_norm_training_matches_numpy_with_any_running_state(key):
    layer = BatchNorm(momentum=0.9, axis=1, scale_init=RANDOM, bias_init=RANDOM)
    _, params, _ = layer.init(key, (3, 4, 2, 2))
    state = {"mean": jnp.array([1.0, -2.0, 0.5, 3.0]), "var": jnp.array([2.0, 0.5, 1.0, 4.0])}
    x = 3.0 * jax.random.normal(jax.random.key(1), (3, 4, 2, 2)) + 1.0
    y, new_state = layer.apply(params, state, x, train=True)
    mean, var = ref_batch_stats(x, axis=1)
    np_params = jax.tree.map(np.asarray, params)
    np.testing.assert_allclose(
        y, ref_batch_norm(np_params, x, mean, var, axis=1), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        new_state["mean"], 0.9 * np.asarray(state["mean"]) + 0.1 * mean, rtol=1e-6
    )
    np.testing.assert_allclose(
        new_state["var"], 0.9 * np.asarray(state["var"]) + 0.1 * var, rtol=1e-6
    )


def test_batch_norm_evaluation_uses_running_statistics_and_keeps_state(key):
    layer = BatchNorm(scale_init=RANDOM, bias_init=RANDOM)
    _, params, _ = layer.init(key, (5, 3))
    state = {"mean": jnp.array([1.0, -2.0, 0.5]), "var": jnp.array([2.0, 0.5, 4.0])}
    x = jax.random.normal(jax.random.key(1), (5, 3))
    y, new_state = layer.apply(params, state, x)  # train=False is the default
    expected = ref_batch_norm(
        jax.tree.map(np.asarray, params), x, np.asarray(state["mean"]), np.asarray(state["var"])
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert new_state is state


def test_batch_norm_train_and_eval_switch(key):
    layer = BatchNorm(momentum=0.5)
    _, params, state = layer.init(key, (64, 2))
    x = jnp.array([[10.0, -3.0]]) + jnp.array([[2.0, 0.5]]) * jax.random.normal(
        jax.random.key(1), (64, 2)
    )
    trained, _ = layer.apply(params, state, x, train=True)
    np.testing.assert_allclose(trained.mean(axis=0), [0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(trained.var(axis=0), [1.0, 1.0], rtol=1e-3)
    evaluated, _ = layer.apply(params, state, x, train=False)  # running stats still 0 and 1
    np.testing.assert_allclose(evaluated, x / np.sqrt(1.0 + EPS), rtol=1e-6)
    for _ in range(40):  # momentum 0.5: the running stats reach the batch's within float32
        _, state = layer.apply(params, state, x, train=True)
    np.testing.assert_allclose(layer.apply(params, state, x)[0], trained, rtol=1e-4, atol=1e-4)


def test_batch_norm_state_survives_jit(key):
    layer = BatchNorm(momentum=0.9)
    _, params, state = layer.init(key, (8, 3))
    x = jax.random.normal(jax.random.key(1), (8, 3)) * 2.0 + 1.0
    step = jax.jit(lambda params, state, x: layer.apply(params, state, x, train=True))
    jitted, eager = state, state
    for _ in range(3):
        y_jit, jitted = step(params, jitted, x)
        y_eager, eager = layer.apply(params, eager, x, train=True)
    assert jax.tree.structure(jitted) == jax.tree.structure(state)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), jitted, eager)
    np.testing.assert_allclose(y_jit, y_eager, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jitted["mean"], (1 - 0.9**3) * np.asarray(x).mean(0), rtol=1e-5)


def test_batch_norm_in_serial_keeps_its_state_under_its_name(key):
    net = jn.serial(Dense(3), BatchNorm(), jn.nn.Relu)
    _, params, state = net.init(key, (None, 4))
    assert sorted(params) == ["batch_norm_0", "dense_0"]
    assert list(state) == ["batch_norm_0"]
    assert state["batch_norm_0"]["mean"].shape == (3,)
    x = jax.random.normal(jax.random.key(1), (6, 4))
    _, trained_state = net.apply(params, state, x, train=True)
    assert list(trained_state) == ["batch_norm_0"]
    hidden = np.asarray(x) @ np.asarray(params["dense_0"]["w"]) + np.asarray(params["dense_0"]["b"])
    np.testing.assert_allclose(
        trained_state["batch_norm_0"]["mean"], 0.01 * hidden.mean(0), rtol=1e-4, atol=1e-7
    )
    _, eval_state = net.apply(params, trained_state, x)
    jax.tree.map(np.testing.assert_array_equal, eval_state, trained_state)


def test_batch_norm_state_is_updated_by_the_train_step_not_by_the_gradient(key):
    net = jn.serial(Dense(3), BatchNorm(), Dense(1))
    optimizer = optax.sgd(0.1)
    ts = jn.train.TrainState.create(net, optimizer, (None, 2), key=key)
    step = jax.jit(jn.train.make_train_step(net, jn.losses.mse, optimizer))
    batch = (jax.random.normal(jax.random.key(1), (8, 2)), jnp.ones((8, 1)))
    new, _ = step(ts, batch)
    assert jax.tree.structure(new.state) == jax.tree.structure(ts.state)
    assert not np.allclose(new.state["batch_norm_0"]["var"], ts.state["batch_norm_0"]["var"])
    assert sorted(new.params["batch_norm_0"]) == ["bias", "scale"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"momentum": 1.0}, ValueError, "batch_norm: momentum must be in [0, 1), got 1.0"),
        ({"momentum": -0.1}, ValueError, "batch_norm: momentum must be in [0, 1), got -0.1"),
        ({"momentum": float("nan")}, ValueError, "batch_norm: momentum must be in [0, 1), got nan"),
        ({"momentum": "0.9"}, TypeError, "batch_norm: momentum must be a number, got str '0.9'"),
        ({"momentum": True}, TypeError, "batch_norm: momentum must be a number, got bool True"),
        ({"epsilon": 0.0}, ValueError, "batch_norm: epsilon must be a positive number, got 0.0"),
        (
            {"epsilon": -1e-5},
            ValueError,
            "batch_norm: epsilon must be a positive number, got -1e-05",
        ),
        (
            {"epsilon": float("inf")},
            ValueError,
            "batch_norm: epsilon must be a positive number, got inf",
        ),
        ({"epsilon": None}, TypeError, "batch_norm: epsilon must be a number, got NoneType None"),
        ({"use_scale": 1}, TypeError, "batch_norm: use_scale must be a bool, got int 1"),
        ({"use_bias": "yes"}, TypeError, "batch_norm: use_bias must be a bool, got str 'yes'"),
        ({"axis": 1.0}, TypeError, "batch_norm: axis must be an int, got float 1.0"),
        ({"axis": True}, TypeError, "batch_norm: axis must be an int, got bool True"),
        (
            {"axis": 0},
            ValueError,
            "batch_norm: axis is the feature axis and cannot be 0, the batch axis",
        ),
        (
            {"running_var": "pytorch"},
            ValueError,
            "batch_norm: running_var must be 'biased' or 'unbiased', got 'pytorch'",
        ),
        (
            {"running_var": True},
            TypeError,
            "batch_norm: running_var must be 'biased' or 'unbiased', got bool True",
        ),
        (
            {"scale_init": 1.0},
            TypeError,
            "batch_norm: scale_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got float 1.0",
        ),
        (
            {"bias_init": None},
            TypeError,
            "batch_norm: bias_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got NoneType None",
        ),
    ],
)
def test_batch_norm_rejects_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        BatchNorm(**kwargs)


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            BatchNorm(),
            (4,),
            "batch_norm: needs inputs with a batch axis and a feature axis, got (4,)",
        ),
        (BatchNorm(axis=3), (2, 3), "batch_norm: axis 3 is out of range for input (2, 3)"),
        (BatchNorm(axis=-3), (2, 3), "batch_norm: axis -3 is out of range for input (2, 3)"),
        (
            BatchNorm(axis=-2),
            (2, 3),
            "batch_norm: axis -2 is the batch axis of input (2, 3); the feature axis must be another one",
        ),
        (
            BatchNorm(),
            (2, None),
            "batch_norm: the feature axis (axis -1) needs a known size, got (2, None)",
        ),
    ],
)
def test_batch_norm_init_rejects_bad_input_shapes(layer, shape, message, key):
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        layer.init(key, shape)


def test_batch_norm_apply_rejects_another_feature_size_with_the_path(key):
    net = jn.serial(BatchNorm())
    _, params, state = net.init(key, (2, 3))
    message = "serial/batch_norm_0: expected input (None, ..., 3), got (2, 4)"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        net.apply(params, state, jnp.ones((2, 4)), train=True)
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        jax.jit(lambda x: net.apply(params, state, x)[0])(jnp.ones((2, 4)))
    layer = BatchNorm(axis=1)
    _, params, state = layer.init(key, (2, 3, 5))
    with pytest.raises(
        jn.ShapeError, match=re.escape("batch_norm: expected input (None, 3, ...), got (2, 5, 3)")
    ):
        layer.apply(params, state, jnp.ones((2, 5, 3)))


def _torch_batch_norm_1d(x, running_mean, running_var, torch_momentum, eps=EPS):
    """One train-mode step of PyTorch's BatchNorm1d on ``(N, C)``, from its documented
    equations: normalize by the biased batch variance; update the running statistics with
    ``(1 − m) · running + m · batch``, using the unbiased variance ``var · n/(n − 1)``."""
    x = np.asarray(x, np.float64)
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0)  # biased
    y = (x - mean) / np.sqrt(var + eps)
    running_mean = (1 - torch_momentum) * running_mean + torch_momentum * mean
    running_var = (1 - torch_momentum) * running_var + torch_momentum * var * n / (n - 1)
    return y, running_mean, running_var


def test_unbiased_running_var_reproduces_pytorch_running_statistics(key):
    layer = BatchNorm(momentum=0.9, running_var="unbiased", use_scale=False, use_bias=False)
    _, params, state = layer.init(key, (None, 3))
    step = jax.jit(lambda state, x: layer.apply(params, state, x, train=True))
    mean, var = np.zeros(3), np.ones(3)
    for i in range(4):
        x = 3.0 * jax.random.normal(jax.random.key(i), (5, 3)) + jnp.arange(3.0).reshape(1, 3)
        y, state = step(state, x)
        expected_y, mean, var = _torch_batch_norm_1d(x, mean, var, torch_momentum=0.1)
        np.testing.assert_allclose(y, expected_y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state["mean"], mean, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(state["var"], var, rtol=1e-6)


def test_the_docs_conversion_of_the_biased_running_var_to_pytorchs(key):
    """docs/layers/normalization.md: after k steps on n values per feature, from var = 1,
    torch_var = n/(n − 1) · var − momentum**k/(n − 1)."""
    biased, unbiased = BatchNorm(momentum=0.9), BatchNorm(momentum=0.9, running_var="unbiased")
    _, params, state = biased.init(key, (None, 4, 2))
    ours, theirs = state, state
    k, n = 6, 8 * 4  # batches of 8 examples with 4 positions: 32 values per feature
    for i in range(k):
        x = jax.random.normal(jax.random.key(i), (8, 4, 2)) * jnp.array([[[0.5, 4.0]]])
        ours = biased.apply(params, ours, x, train=True)[1]
        theirs = unbiased.apply(params, theirs, x, train=True)[1]
    converted = n / (n - 1) * np.asarray(ours["var"]) - 0.9**k / (n - 1)
    np.testing.assert_allclose(converted, theirs["var"], rtol=1e-6)
    np.testing.assert_allclose(ours["mean"], theirs["mean"], rtol=1e-6)


def test_unbiased_running_var_needs_two_values_per_feature(key):
    layer = jn.serial(BatchNorm(running_var="unbiased"))
    _, params, state = layer.init(key, (None, 3))
    message = (
        "serial/batch_norm_0: running_var='unbiased' needs more than one value per feature in "
        "a training batch, got input (1, 3)"
    )
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        layer.apply(params, state, jnp.ones((1, 3)), train=True)
    # evaluation uses the running statistics (at first 0 and 1), and leaves them as they are
    y, same = layer.apply(params, state, jnp.ones((1, 3)))
    np.testing.assert_allclose(y, np.full((1, 3), 1 / np.sqrt(1 + EPS)), rtol=1e-6)
    jax.tree.map(np.testing.assert_array_equal, same, state)
    # after a training batch of 4: the running statistics PyTorch's way, then used as they are
    batch = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    trained = layer.apply(params, state, jnp.asarray(batch), train=True)[1]
    mean = 0.01 * batch.mean(0)  # momentum 0.99, from mean 0 and var 1
    var = 0.99 + 0.01 * batch.var(0, ddof=1)
    np.testing.assert_allclose(trained["batch_norm_0"]["mean"], mean, rtol=1e-6)
    np.testing.assert_allclose(trained["batch_norm_0"]["var"], var, rtol=1e-6)
    x = np.array([[1.0, -2.0, 3.0]], np.float32)
    y, same = layer.apply(params, trained, jnp.asarray(x))
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + EPS), rtol=1e-5)  # scale 1, bias 0
    jax.tree.map(np.testing.assert_array_equal, same, trained)


# ----------------------------------------------------------------------------- LayerNorm


def test_layer_norm_normalizes_each_row_on_its_own(key):
    layer = LayerNorm()
    _, params, state = layer.init(key, (3, 2, 16))
    x = 5.0 + 3.0 * jax.random.normal(jax.random.key(1), (3, 2, 16))
    y, new_state = layer.apply(params, state, x, train=True)  # the same in both modes
    np.testing.assert_allclose(y.mean(-1), np.zeros((3, 2)), atol=1e-5)
    np.testing.assert_allclose(y.var(-1), np.ones((3, 2)), rtol=1e-3)
    np.testing.assert_array_equal(y, layer.apply(params, state, x)[0])
    assert new_state == {}
    assert jax.tree.map(jnp.shape, params) == {"scale": (16,), "bias": (16,)}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epsilon": 0}, ValueError, "layer_norm: epsilon must be a positive number, got 0"),
        ({"epsilon": "1e-5"}, TypeError, "layer_norm: epsilon must be a number, got str '1e-5'"),
        ({"use_scale": None}, TypeError, "layer_norm: use_scale must be a bool, got NoneType None"),
        ({"use_bias": 0}, TypeError, "layer_norm: use_bias must be a bool, got int 0"),
        (
            {"scale_init": "ones"},
            TypeError,
            "layer_norm: scale_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got str 'ones'",
        ),
    ],
)
def test_layer_norm_rejects_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        LayerNorm(**kwargs)


@pytest.mark.parametrize("shape", [(4,), (2, None)], ids=["no_feature_axis", "unknown_features"])
def test_layer_norm_init_rejects_bad_input_shapes(shape, key):
    message = f"layer_norm: needs inputs (batch, ..., features) with a known number of features, got {shape}"
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        LayerNorm().init(key, shape)


def test_layer_norm_apply_rejects_another_width(key):
    layer = LayerNorm()
    _, params, state = layer.init(key, (2, 3))
    with pytest.raises(
        jn.ShapeError, match=re.escape("layer_norm: expected input (None, ..., 3), got (2, 4)")
    ):
        layer.apply(params, state, jnp.ones((2, 4)))
    bare = LayerNorm(use_scale=False, use_bias=False)  # no params: any width, but a batch axis
    _, params, state = bare.init(key, (2, 3))
    assert params == {}
    x = jax.random.normal(jax.random.key(1), (2, 7))
    np.testing.assert_allclose(
        bare.apply(params, state, x)[0], ref_layer_norm({}, x), rtol=1e-4, atol=1e-5
    )
    with pytest.raises(
        jn.ShapeError, match=re.escape("layer_norm: expected input (None, ..., None), got (7,)")
    ):
        bare.apply(params, state, jnp.ones((7,)))


# ----------------------------------------------------------------------------- GroupNorm


def test_group_norm_normalizes_each_group_of_each_example(key):
    layer = GroupNorm(2)  # the contract case's shapes: its compiled operations are reused
    _, params, state = layer.init(key, (2, 3, 2, 4))
    assert jax.tree.map(jnp.shape, params) == {"scale": (4,), "bias": (4,)}
    assert state == {}
    x = 5.0 + 3.0 * jax.random.normal(jax.random.key(1), (2, 3, 2, 4))
    y, new_state = layer.apply(params, state, x, train=True)  # the same in both modes
    np.testing.assert_array_equal(y, layer.apply(params, state, x)[0])
    groups = np.asarray(y).reshape(2, 6, 2, 2)  # (B, H·W, G, C/G)
    np.testing.assert_allclose(groups.mean(axis=(1, 3)), np.zeros((2, 2)), atol=1e-5)
    np.testing.assert_allclose(groups.var(axis=(1, 3)), np.ones((2, 2)), rtol=1e-3)
    assert new_state == {}


def test_group_norm_with_one_group_on_vectors_is_layer_norm(key):
    """(N, C) inputs, as torch.nn.GroupNorm allows: one group is the whole example."""
    x = jax.random.normal(jax.random.key(1), (4, 6))

    @jax.jit  # one program for the three layers
    def outputs(x):
        return [
            layer.apply({}, {}, x)[0]
            for layer in (GroupNorm(1), LayerNorm(), GroupNorm(1, epsilon=1e-3))
        ]

    group, layer, loose = outputs(x)  # no params: scale 1, bias 0
    np.testing.assert_allclose(group, layer, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loose, ref_group_norm(1, epsilon=1e-3)({}, x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_groups": 0}, ValueError, "group_norm: num_groups must be a positive int, got 0"),
        (
            {"num_groups": 2.0},
            TypeError,
            "group_norm: num_groups must be a positive int, got float 2.0",
        ),
        (
            {"num_groups": True},
            TypeError,
            "group_norm: num_groups must be a positive int, got bool True",
        ),
        (
            {"num_groups": 2, "epsilon": 0.0},
            ValueError,
            "group_norm: epsilon must be a positive number, got 0.0",
        ),
        (
            {"num_groups": 2, "use_scale": 1},
            TypeError,
            "group_norm: use_scale must be a bool, got int 1",
        ),
        (
            {"num_groups": 2, "use_bias": None},
            TypeError,
            "group_norm: use_bias must be a bool, got NoneType None",
        ),
        (
            {"num_groups": 2, "bias_init": "zeros"},
            TypeError,
            "group_norm: bias_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got str 'zeros'",
        ),
    ],
)
def test_group_norm_rejects_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=exact(message)):
        GroupNorm(**kwargs)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (2, 4, 4, 8),
            "group_norm: channels must be divisible by num_groups=3, got input (2, 4, 4, 8)",
        ),
        (
            (2, 2),
            "group_norm: channels must be divisible by num_groups=3, got input (2, 2)",
        ),
        (
            (6,),
            "group_norm: needs inputs (batch, ..., channels) with a known number of channels, got (6,)",
        ),
        (
            (2, None),
            "group_norm: needs inputs (batch, ..., channels) with a known number of channels, got (2, None)",
        ),
    ],
)
def test_group_norm_init_rejects_bad_input_shapes(shape, message, key):
    with pytest.raises(jn.ShapeError, match=exact(message)):
        GroupNorm(3).init(key, shape)


def test_group_norm_apply_rejects_another_channel_count_with_the_path(key):
    net = jn.serial(GroupNorm(2))
    _, params, state = net.init(key, (2, 5, 4))
    message = "serial/group_norm_0: expected input (None, ..., 4), got (2, 5, 6)"
    with pytest.raises(jn.ShapeError, match=exact(message)):
        jax.jit(lambda x: net.apply(params, state, x)[0])(jnp.ones((2, 5, 6)))
    bare = GroupNorm(2, use_scale=False, use_bias=False)  # no params: any even channel count
    assert bare.apply({}, {}, jnp.ones((2, 6)))[0].shape == (2, 6)
    message = "group_norm: channels must be divisible by num_groups=2, got input (2, 5)"
    with pytest.raises(jn.ShapeError, match=exact(message)):
        bare.apply({}, {}, jnp.ones((2, 5)))


# ----------------------------------------------------------------------------- RMSNorm


def test_rms_norm_gives_each_row_a_unit_root_mean_square(key):
    layer = RMSNorm()  # the contract case's shapes: its compiled operations are reused
    _, params, state = layer.init(key, (None, 3, 4))
    assert jax.tree.map(jnp.shape, params) == {"scale": (4,)}  # no bias
    x = 3.0 + 2.0 * jax.random.normal(jax.random.key(1), (2, 3, 4))
    y, new_state = layer.apply(params, state, x, train=True)
    np.testing.assert_allclose(jnp.sqrt(jnp.mean(y**2, axis=-1)), 1.0, rtol=1e-5)
    assert float(jnp.abs(y.mean(-1)).min()) > 0.1  # the mean is kept, not subtracted
    assert new_state == {}
    bare = RMSNorm(use_scale=False, epsilon=0.5)  # no params: any width
    assert bare.init(key, (2, 3))[1] == {}
    y = bare.apply({}, {}, x)[0]
    np.testing.assert_allclose(y, ref_rms_norm({}, x, epsilon=0.5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epsilon": -1.0}, ValueError, "rms_norm: epsilon must be a positive number, got -1.0"),
        ({"epsilon": "1e-6"}, TypeError, "rms_norm: epsilon must be a number, got str '1e-6'"),
        ({"use_scale": "no"}, TypeError, "rms_norm: use_scale must be a bool, got str 'no'"),
        (
            {"scale_init": 1},
            TypeError,
            "rms_norm: scale_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got int 1",
        ),
    ],
)
def test_rms_norm_rejects_bad_hyperparameters(kwargs, error, message):
    with pytest.raises(error, match=exact(message)):
        RMSNorm(**kwargs)


def test_rms_norm_rejects_bad_input_shapes(key):
    message = (
        "rms_norm: needs inputs (batch, ..., features) with a known number of features, got (4,)"
    )
    with pytest.raises(jn.ShapeError, match=exact(message)):
        RMSNorm().init(key, (4,))
    net = jn.serial(RMSNorm())
    _, params, state = net.init(key, (2, 3))
    message = "serial/rms_norm_0: expected input (None, ..., 3), got (2, 4)"
    with pytest.raises(jn.ShapeError, match=exact(message)):
        net.apply(params, state, jnp.ones((2, 4)))
