"""One contract suite over every layer and combinator (optax's table-driven style).

For each case: the shape ``init`` declares equals the shape ``apply`` returns; params are nested
dicts with readable keys; ``apply`` agrees with an independent NumPy reference; it works under
``jit`` (without retracing on the second call), ``vmap`` and ``grad``; and finite differences
(``jax.test_util.check_grads``) confirm its gradients.
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxnet as jn
from tests import references as ref


class Case(NamedTuple):
    id: str
    layer: jn.Layer
    input_shape: tuple[int, ...]
    reference: Callable[[Any, np.ndarray], np.ndarray]


def _activation_cases() -> list[Case]:
    return [
        Case(name, getattr(jn.nn, name), (3, 5), lambda p, x, f=fn: f(x))
        for name, fn in ref.ACTIVATIONS.items()
    ]


def _two_dense(p, x):
    return ref.dense(p["dense_1"], ref.sigmoid(ref.dense(p["dense_0"], x)))


CASES = [
    Case("dense", jn.nn.Dense(9), (1, 8), ref.dense),
    Case("dense_3d_input", jn.nn.Dense(4), (2, 3, 5), ref.dense),
    Case("dense_no_bias", jn.nn.Dense(3, use_bias=False), (4, 6), ref.dense),
    Case("identity", jn.nn.Identity, (2, 3), lambda p, x: x),
    Case("flatten", jn.nn.Flatten, (2, 3, 4), lambda p, x: x.reshape(2, 12)),
    Case("reshape", jn.nn.Reshape((3, -1)), (2, 12), lambda p, x: x.reshape(2, 3, 4)),
    *_activation_cases(),
    Case("serial", jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4)), (2, 8), _two_dense),
    Case(
        "parallel_concat",
        jn.parallel(jn.nn.Dense(3), jn.nn.Tanh),
        (2, 4),
        lambda p, x: np.concatenate([ref.dense(p["dense_0"], x), np.tanh(x)], axis=-1),
    ),
    Case(
        "parallel_sum",
        jn.parallel(jn.nn.Dense(4), jn.nn.Identity, combine="sum"),
        (2, 4),
        lambda p, x: ref.dense(p["dense_0"], x) + x,
    ),
    Case(
        "residual",
        jn.residual(jn.serial(jn.nn.Dense(4), jn.nn.Tanh)),
        (3, 4),
        lambda p, x: x + np.tanh(ref.dense(p["serial_0"]["dense_0"], x)),
    ),
    Case("named", jn.named("hidden", jn.nn.Dense(2)), (2, 3), ref.dense),
]

pytestmark = pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])


def _setup(case: Case, key: jax.Array):
    out_shape, params, state = case.layer.init(key, case.input_shape)
    x = jax.random.normal(jax.random.key(1), case.input_shape)
    return out_shape, params, state, x


def test_declared_shape_is_real_shape(case, key):
    out_shape, params, state, x = _setup(case, key)
    y, new_state = case.layer.apply(params, state, x)
    assert y.shape == out_shape
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert jn.output_shape(case.layer, case.input_shape) == out_shape


def test_unknown_batch_size_keeps_feature_shape(case, key):
    out_shape, *_ = _setup(case, key)
    unknown = case.layer.init(key, (None, *case.input_shape[1:]))[0]
    assert unknown == (None, *out_shape[1:])
    assert case.layer.init(key, (-1, *case.input_shape[1:]))[0] == unknown


def test_matches_numpy_reference(case, key):
    _, params, state, x = _setup(case, key)
    y, _ = case.layer.apply(params, state, x)
    expected = case.reference(jax.tree.map(np.asarray, params), np.asarray(x, np.float64))
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-6)


def test_params_are_nested_dicts_with_readable_keys(case, key):
    _, params, state, _ = _setup(case, key)
    for tree in (params, state):
        assert isinstance(tree, dict)
        for path, _leaf in jax.tree_util.tree_leaves_with_path(tree):
            assert all(isinstance(entry, jax.tree_util.DictKey) for entry in path)
            assert all(isinstance(entry.key, str) and entry.key for entry in path)


def test_jit_matches_eager_and_traces_once(case, key):
    _, params, state, x = _setup(case, key)
    traces = []

    def run(params, x):
        traces.append(1)
        return case.layer.apply(params, state, x)[0]

    jitted = jax.jit(run)
    np.testing.assert_allclose(jitted(params, x), run(params, x), rtol=1e-6, atol=1e-6)
    jitted(params, x + 1.0)
    assert len(traces) == 2  # one trace for jit, one eager call; the second jit call reuses it


def test_vmap_over_batch_equals_batched_apply(case, key):
    _, params, state, x = _setup(case, key)
    batched = case.layer.apply(params, state, x)[0]

    def one_example(example):
        return case.layer.apply(params, state, example[None])[0][0]  # (1, ...) -> (...)

    np.testing.assert_allclose(jax.vmap(one_example)(x), batched, rtol=1e-5, atol=1e-6)


def test_grad_has_params_structure(case, key):
    _, params, state, x = _setup(case, key)

    def loss(params, x):
        return jnp.sum(case.layer.apply(params, state, x)[0] ** 2)

    grads_params, grads_x = jax.grad(loss, argnums=(0, 1))(params, x)
    assert jax.tree.structure(grads_params) == jax.tree.structure(params)
    assert grads_x.shape == x.shape
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves((grads_params, grads_x)))


def test_finite_differences(case, key):
    with jax.enable_x64(True):
        _, params, state, x = _setup(case, key)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), params)
        x = x.astype(jnp.float64)

        @jax.jit  # compiled once: eager op-by-op dispatch makes check_grads slow
        def forward(params, x):
            return case.layer.apply(params, state, x)[0]

        check_grads(forward, (params, x), order=2, modes=("fwd", "rev"), eps=1e-4)
