"""jn.remat: the same layer (init, paths, values, gradients, keys, state, config), recomputed.

``remat`` is imported from ``jaxnet.remat`` until ``jaxnet/__init__.py`` re-exports it.
"""

import functools
import json
import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.core import param_paths
from jaxnet.nn.dropout import MISSING_KEY
from jaxnet.remat import POLICIES, remat
from tests import contract
from tests import references as ref
from tests.contract import Case

ALL_POLICIES = [None, *POLICIES]


def _block(features: int = 6) -> jn.Layer:
    return jn.serial(jn.nn.Dense(features), jn.nn.Tanh, jn.nn.Dense(features))


def _block_reference(p, x):
    return ref.dense(p["dense_1"], np.tanh(ref.dense(p["dense_0"], x)))


CASES = [
    Case(
        "remat_block_dots_saveable",
        remat(_block(), policy="dots_saveable"),
        (3, 4),
        _block_reference,
    ),
]


# Finite differences, the contract's slowest check (about 3 s here), are left out: every
# policy's gradient is compared below with jax.grad of the same net written out by hand.
CHECKS = [check for check in contract.CHECKS if check is not contract.check_finite_differences]


@pytest.mark.parametrize("check", CHECKS, ids=[c.__name__.removeprefix("check_") for c in CHECKS])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


@pytest.mark.parametrize("check", contract.REFERENCE_CHECKS, ids=contract.REFERENCE_CHECK_IDS)
def test_contract_of_a_rematted_leaf(check, key):
    check(Case("remat_dense", remat(jn.nn.Dense(5)), (2, 4), ref.dense), key)


def _deep(wrap) -> jn.Layer:
    """Three residual blocks and a head; ``wrap`` is applied to each block."""
    blocks = [wrap(jn.residual(_block())) for _ in range(3)]
    return jn.serial(jn.nn.Dense(6), *blocks, jn.nn.Dense(2))


def _by_hand(params, x):
    """The deep net written out in jax.numpy from its params: a reference for the gradient
    that does not go through jaxnet's apply."""

    def dense(p, h):
        return h @ p["w"] + p["b"][None, :]  # (B, in) @ (in, out) + (1, out)

    h = dense(params["dense_0"], x)
    for i in range(3):
        block = params[f"residual_{i}"]["serial_0"]
        h = h + dense(block["dense_1"], jnp.tanh(dense(block["dense_0"], h)))
    return dense(params["dense_1"], h)


def _loss_and_grads(forward, params, x):
    return jax.jit(jax.value_and_grad(lambda p: jnp.sum(forward(p, x) ** 2)))(params)


@pytest.fixture(scope="module")
def deep_references():
    """The deep net's params and input, and its loss and gradients computed by hand and by
    the plain net: computed once for every policy's test."""
    plain = _deep(lambda b: b)
    _, params, state = plain.init(jax.random.key(0), (4, 5))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    by_plain_net = _loss_and_grads(lambda p, x: plain.apply(p, state, x)[0], params, x)
    return params, x, [_loss_and_grads(_by_hand, params, x), by_plain_net]


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_values_and_gradients_equal_the_plain_net(policy, deep_references):
    params, x, references = deep_references
    rematted = _deep(lambda b: remat(b, policy=policy))
    value, grads = _loss_and_grads(lambda p, x: rematted.apply(p, {}, x)[0], params, x)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # noqa: E731
    for expected_value, expected_grads in references:
        np.testing.assert_allclose(value, expected_value, rtol=1e-6)
        jax.tree.map(close, grads, expected_grads)


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_the_gradient_goes_through_jax_checkpoint_with_the_policy(policy, key):
    net = remat(_block(), policy=policy)
    _, params, state = net.init(key, (2, 3))
    jaxpr = jax.make_jaxpr(lambda p: net.apply(p, state, jnp.ones((2, 3)))[0].sum())(params)
    (eqn,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name in ("checkpoint", "remat2")]
    expected = None if policy is None else getattr(jax.checkpoint_policies, policy)
    assert eqn.params["policy"] is expected


def test_params_state_and_their_paths_are_the_wrapped_layers(key):
    block = jn.serial(jn.nn.Dense(4), jn.nn.BatchNorm(), jn.nn.Relu)
    plain = jn.serial(block, jn.named("hidden", jn.nn.Dense(4)), block, jn.nn.Dense(1))
    rematted = jn.serial(
        remat(block), remat(jn.named("hidden", jn.nn.Dense(4))), remat(block), remat(jn.nn.Dense(1))
    )
    _, params, state = plain.init(key, (2, 3))
    _, r_params, r_state = rematted.init(key, (2, 3))
    assert param_paths(r_params) == param_paths(params)
    assert sorted(r_params) == ["dense_0", "hidden", "serial_0", "serial_1"]
    jax.tree.map(np.testing.assert_array_equal, (r_params, r_state), (params, state))
    renamed = jn.serial(jn.named("first", remat(block)), remat(jn.named("second", block)))
    assert sorted(renamed.init(key, (2, 3))[1]) == ["first", "second"]


@functools.cache
def _step(net: jn.Layer, train: bool):
    """``(params, state, x, key) -> ((loss, new_state), grads)`` of one step, compiled once."""

    def loss(p, s, x, key):
        y, new_state = net.apply(p, s, x, key=key, train=train)
        return jnp.sum(y**2), new_state

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def test_dropout_keys_the_train_flag_and_batch_norm_state_are_the_plain_nets(key):
    """Recomputed dropout draws the same mask from the same key, so the gradients agree (and
    another key gives other ones); BatchNorm's new state leaves the checkpoint; train=False
    needs no key and leaves the state alone."""
    block = jn.serial(jn.nn.Dense(8), jn.nn.BatchNorm(momentum=0.5), jn.nn.Dropout(0.5))
    plain = jn.serial(block, jn.nn.Dense(3))
    rematted = jn.serial(remat(block), jn.nn.Dense(3))
    _, params, state = jax.jit(plain.init, static_argnums=1)(key, (4, 5))
    x = jax.random.normal(jax.random.key(1), (4, 5))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # noqa: E731
    for train, step_key in ((True, jax.random.key(7)), (False, None)):
        mine = _step(rematted, train)(params, state, x, step_key)
        jax.tree.map(close, mine, _step(plain, train)(params, state, x, step_key))
    (_, trained), grads = _step(rematted, True)(params, state, x, jax.random.key(7))
    other_mask = _step(rematted, True)(params, state, x, jax.random.key(8))[1]
    assert not np.allclose(grads["dense_0"]["w"], other_mask["dense_0"]["w"])
    assert not np.allclose(trained["serial_0"]["batch_norm_0"]["mean"], 0.0)  # it moved
    (_, evaluated), _ = _step(rematted, False)(params, state, x, None)
    jax.tree.map(np.testing.assert_array_equal, evaluated, state)
    with pytest.raises(ValueError, match=re.escape(MISSING_KEY)):
        rematted.apply(params, state, x, train=True)


def test_intermediates_and_summary_are_the_plain_nets(key):
    block = jn.serial(jn.nn.Dense(4), jn.nn.Relu)
    plain = jn.serial(block, jn.nn.Dense(4), block)
    rematted = jn.serial(remat(block), remat(jn.nn.Dense(4)), remat(block, policy="dots_saveable"))
    _, params, state = plain.init(key, (2, 3))
    x = jax.random.normal(jax.random.key(1), (2, 3))
    mine, theirs = (jn.intermediates(n, params, state, x) for n in (rematted, plain))
    assert list(mine) == list(theirs)  # the same paths, in the same (forward) order
    jax.tree.map(np.testing.assert_array_equal, mine, theirs)
    jitted = jax.jit(lambda p: jn.intermediates(rematted, p, state, x))(params)
    assert sorted(jitted) == sorted(theirs)
    assert jn.summary(rematted, (2, 3), show=False) == jn.summary(plain, (2, 3), show=False)


def test_the_config_names_remat_and_its_policy():
    net = jn.serial(remat(jn.nn.Dense(3)), remat(jn.nn.Relu, policy="nothing_saveable"))
    layers = jn.to_config(net)["net"]["arguments"]["layers"]
    assert layers == [
        {
            "type": "remat",
            "arguments": {"layer": {"type": "nn.Dense", "arguments": {"features": 3}}},
        },
        {
            "type": "remat",
            "arguments": {"layer": {"type": "nn.Relu"}, "policy": "nothing_saveable"},
        },
    ]
    rebuilt = jn.from_config(json.loads(json.dumps(jn.to_config(net))))
    assert jn.to_config(rebuilt) == jn.to_config(net)


def test_a_config_with_remat_loads_in_a_fresh_process():
    """Loading imports jaxnet.config (core and nn) only; remat's module comes when named."""
    config = json.dumps(jn.to_config(jn.serial(remat(jn.nn.Dense(3), policy="dots_saveable"))))
    code = (
        "import json, sys, jaxnet as jn\n"
        "config = json.loads(sys.argv[1])\n"
        "print(jn.to_config(jn.from_config(config)) == config, 'jaxnet.remat' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, config],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True True"


def test_the_name_remat_is_jaxnets():
    with pytest.raises(ValueError) as raised:
        jn.register_layer("remat", jn.nn.Dense(2))
    assert str(raised.value) == "register_layer: 'remat' is the name of a built-in; pick another"


KNOWN = (
    "'dots_saveable', 'dots_with_no_batch_dims_saveable', 'everything_saveable', 'nothing_saveable'"
)
NOT_A_NAME = (
    "remat: policy must be None or the name of a jax.checkpoint_policies policy, so that a net "
    "config can hold it; got {got}: pass {fix}"
)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: remat(jn.nn.Dense(2), policy="dots"),
            ValueError,
            f"remat: unknown policy 'dots'; the known policies are {KNOWN}",
        ),
        (
            lambda: remat(jn.nn.Dense(2), policy=jax.checkpoint_policies.dots_saveable),
            TypeError,
            NOT_A_NAME.format(
                got=repr(jax.checkpoint_policies.dots_saveable), fix="policy='dots_saveable'"
            ),
        ),
        (
            lambda: remat(jn.nn.Dense(2), policy=1),
            TypeError,
            NOT_A_NAME.format(got="1", fix=f"one of {KNOWN}"),
        ),
        (
            lambda: remat(jn.nn.Dense),
            TypeError,
            f"remat: argument 0 must be a jaxnet Layer, got function: {jn.nn.Dense!r} "
            "(did you pass a constructor without calling it?)",
        ),
        (
            lambda: remat("dense"),
            TypeError,
            "remat: argument 0 must be a jaxnet Layer, got str: 'dense'",
        ),
        (
            lambda: remat(jn.nn.Dense(2)).apply({}, {}, [1.0]),
            TypeError,
            "dense: x must be an array (jax or NumPy), got list; convert it with jnp.asarray(x)",
        ),
    ],
    ids=[
        "unknown_policy",
        "policy_function",
        "policy_int",
        "constructor",
        "not_a_layer",
        "list_input",
    ],
)
def test_errors(call, error, message):
    with pytest.raises(error) as raised:
        call()
    assert str(raised.value) == message


def test_an_unknown_policy_in_a_config_names_the_place():
    config = jn.to_config(remat(jn.nn.Dense(2), policy="dots_saveable"))
    config["net"]["arguments"]["policy"] = "dots"
    with pytest.raises(jn.ConfigError) as raised:
        jn.from_config(config)
    assert (
        str(raised.value)
        == f"net: remat: remat: unknown policy 'dots'; the known policies are {KNOWN}"
    )


@pytest.mark.parametrize("jit", [False, True])
def test_errors_inside_remat_name_the_path(jit, key):
    inner = jn.serial(jn.nn.Dense(4), jn.nn.Relu)
    net = jn.serial(jn.nn.Dense(3), remat(inner))
    _, params, state = net.init(key, (1, 3))
    apply = jax.jit(net.apply) if jit else net.apply
    other = jn.serial(jn.nn.Dense(3), jn.serial(jn.nn.Dense(5), jn.nn.Relu)).init(key, (1, 3))[1]
    with pytest.raises(jn.ShapeError) as raised:
        apply(other, state, jnp.ones((1, 3)))
    assert str(raised.value) == (
        "serial/serial_0/dense_0: expected param b of shape (4,) for input (1, 3), got (5,); "
        "were they made by this net's init?"
    )
    lone = remat(inner)  # remat is transparent: the path starts at the wrapped layer
    with pytest.raises(jn.ShapeError) as raised:
        lone.apply(params["serial_0"], {}, jnp.ones((1, 5)))
    assert str(raised.value) == "serial/dense_0: expected input (..., 3), got (1, 5)"
