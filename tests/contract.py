"""The layer contract, as checks that every layer family's test file runs over its cases.

For each case: the shape ``init`` declares equals the shape ``apply`` returns (also with an
unknown batch size); params and state are nested dicts with readable keys; ``apply`` agrees
with an independent NumPy reference; it works under ``jit`` (without retracing on the second
call), ``vmap`` and ``grad``; and finite differences (``jax.test_util.check_grads``) confirm
its gradients; and the layer goes through :func:`jaxnet.to_config` and back unchanged. Use it
as::

    @pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
    @pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
    def test_contract(case, check):
        check(case)
"""

import json
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.test_util import check_grads

import jaxnet as jn


def normal_input(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """The default input: standard normal floats."""
    return jax.random.normal(key, shape)


class Case(NamedTuple):
    """One layer to check.

    Attributes:
      id: the test id.
      layer: the layer (applied with ``train=False`` and no key, so it is deterministic).
      input_shape: the input shape, batch first.
      reference: ``reference(params_as_numpy, x_as_float64_numpy) -> expected output``.
      make_input: ``(key, shape) -> x``; integer inputs (token ids) need their own.
      differentiable_input: False for integer inputs: gradients are taken w.r.t. params only.
      tolerance: rtol and atol of the reference comparison.
    """

    id: str
    layer: jn.Layer
    input_shape: tuple[int, ...]
    reference: Callable[[Any, np.ndarray], np.ndarray]
    make_input: Callable[[jax.Array, tuple[int, ...]], jax.Array] = normal_input
    differentiable_input: bool = True
    tolerance: float = 2e-5


_SETUPS: dict[tuple[int, bytes, bool], Any] = {}


def _setup(case: Case, key: jax.Array):
    """The case's declared shape, params, state and input: made once per case, key and
    precision (``jax_enable_x64``) and shared by its checks, which only read them."""
    memo = (id(case), np.asarray(jax.random.key_data(key)).tobytes(), jax.config.jax_enable_x64)
    if memo not in _SETUPS:
        out_shape, params, state = case.layer.init(key, case.input_shape)
        x = case.make_input(jax.random.key(1), case.input_shape)
        _SETUPS[memo] = (case, (out_shape, params, state, x))  # the case keeps its id alive
    out_shape, params, state, x = _SETUPS[memo][1]
    return out_shape, *jax.tree.map(lambda leaf: leaf, (params, state)), x  # fresh dicts


def check_declared_shape_is_real_shape(case: Case, key: jax.Array) -> None:
    out_shape, params, state, x = _setup(case, key)
    y, new_state = case.layer.apply(params, state, x)
    assert y.shape == out_shape
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert jn.output_shape(case.layer, case.input_shape) == out_shape


def check_unknown_batch_size_keeps_feature_shape(case: Case, key: jax.Array) -> None:
    out_shape, *_ = _setup(case, key)
    unknown = case.layer.init(key, (None, *case.input_shape[1:]))[0]
    assert unknown == (None, *out_shape[1:])
    assert case.layer.init(key, (-1, *case.input_shape[1:]))[0] == unknown


def check_matches_numpy_reference(case: Case, key: jax.Array) -> None:
    _, params, state, x = _setup(case, key)
    y, _ = case.layer.apply(params, state, x)
    expected = case.reference(jax.tree.map(np.asarray, params), np.asarray(x, np.float64))
    np.testing.assert_allclose(y, expected, rtol=case.tolerance, atol=case.tolerance / 10)


def check_params_are_nested_dicts_with_readable_keys(case: Case, key: jax.Array) -> None:
    _, params, state, _ = _setup(case, key)
    for tree in (params, state):
        assert isinstance(tree, dict)
        for path, _leaf in jax.tree_util.tree_leaves_with_path(tree):
            assert all(isinstance(entry, jax.tree_util.DictKey) for entry in path)
            assert all(isinstance(entry.key, str) and entry.key for entry in path)


def check_jit_matches_eager_and_traces_once(case: Case, key: jax.Array) -> None:
    _, params, state, x = _setup(case, key)
    traces = []

    def run(params, x):
        traces.append(1)
        return case.layer.apply(params, state, x)[0]

    jitted = jax.jit(run)
    np.testing.assert_allclose(jitted(params, x), run(params, x), rtol=1e-6, atol=1e-6)
    jitted(params, x[::-1])  # new values, same shape
    assert len(traces) == 2  # one trace for jit, one eager call; the second jit call reuses it


def check_vmap_over_batch_equals_batched_apply(case: Case, key: jax.Array) -> None:
    _, params, state, x = _setup(case, key)
    batched = case.layer.apply(params, state, x)[0]

    def one_example(example):
        return case.layer.apply(params, state, example[None])[0][0]  # (1, ...) -> (...)

    np.testing.assert_allclose(jax.vmap(one_example)(x), batched, rtol=1e-5, atol=1e-6)


def check_grad_has_params_structure(case: Case, key: jax.Array) -> None:
    _, params, state, x = _setup(case, key)

    def loss(params, x):
        return jnp.sum(case.layer.apply(params, state, x)[0] ** 2)

    argnums = (0, 1) if case.differentiable_input else (0,)
    grads = jax.grad(loss, argnums=argnums)(params, x)
    assert jax.tree.structure(grads[0]) == jax.tree.structure(params)
    if case.differentiable_input:
        assert grads[1].shape == x.shape
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def check_finite_differences(case: Case, key: jax.Array) -> None:
    with jax.enable_x64(True):
        _, params, state, x = _setup(case, key)
        params, state = jax.tree.map(_to_float64, (params, state))
        x = _to_float64(x)

        @jax.jit  # compiled once: eager op-by-op dispatch makes check_grads slow
        def forward(params, x):
            return case.layer.apply(params, state, x)[0]

        if case.differentiable_input:
            check_grads(forward, (params, x), order=2, modes=("fwd", "rev"), eps=1e-4)
        else:
            check_grads(lambda p: forward(p, x), (params,), order=2, modes=("fwd", "rev"), eps=1e-4)


def check_config_round_trip(case: Case, key: jax.Array) -> None:
    """``from_config(to_config(layer))`` through JSON text: the same params and state from the
    same key, the same outputs, and the same config again."""
    config = jn.to_config(case.layer)
    rebuilt = jn.from_config(json.loads(json.dumps(config)))
    assert jn.to_config(rebuilt) == config
    out_shape, params, state, x = _setup(case, key)
    again = rebuilt.init(key, case.input_shape)
    assert again[0] == out_shape
    for mine, theirs in ((params, again[1]), (state, again[2])):
        assert jax.tree.structure(mine) == jax.tree.structure(theirs)
        for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(theirs), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        rebuilt.apply(params, state, x)[0], case.layer.apply(params, state, x)[0]
    )


def _to_float64(a: jax.Array) -> jax.Array:
    return a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a


CHECKS = [
    check_declared_shape_is_real_shape,
    check_unknown_batch_size_keeps_feature_shape,
    check_matches_numpy_reference,
    check_params_are_nested_dicts_with_readable_keys,
    check_jit_matches_eager_and_traces_once,
    check_vmap_over_batch_equals_batched_apply,
    check_grad_has_params_structure,
    check_finite_differences,
    check_config_round_trip,
]
CHECK_IDS = [check.__name__.removeprefix("check_") for check in CHECKS]

REFERENCE_CHECKS = [
    check_declared_shape_is_real_shape,
    check_unknown_batch_size_keeps_feature_shape,
    check_matches_numpy_reference,
    check_config_round_trip,
]
"""The cheap checks, for extra settings of a layer whose full contract already runs elsewhere."""
REFERENCE_CHECK_IDS = [check.__name__.removeprefix("check_") for check in REFERENCE_CHECKS]
