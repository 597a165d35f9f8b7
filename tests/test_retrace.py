"""The retrace explainer: one RetraceWarning per cause, naming the jaxnet path that changed."""

import re
import warnings

import jax
import jax.numpy as jnp
import optax
import pytest

import jaxnet as jn
from jaxnet.train.retrace import RetraceWarning, watch_retraces

NET = jn.serial(jn.nn.Dense(4), jn.nn.Relu, jn.nn.Dense(3))


def _state(optimizer=None):
    optimizer = optimizer or optax.sgd(0.1)
    return jn.train.TrainState.create(NET, optimizer, (None, 5), key=jax.random.key(0))


def _step(optimizer=None):
    optimizer = optimizer or optax.sgd(0.1)
    step = jn.train.make_train_step(NET, jn.losses.softmax_cross_entropy, optimizer)
    return jax.jit(watch_retraces(step, name="train_step"), donate_argnums=0)


def _batch(size=8, dtype=jnp.float32):
    return jnp.ones((size, 5), dtype), jnp.zeros((size,), jnp.int32)


def _sum_params(train_state, batch):
    """A step that works for any params tree (so a new param traces instead of failing)."""
    x, _ = batch
    return sum(jnp.sum(p) for p in jax.tree.leaves(train_state.params)) * jnp.sum(x)


def _one_warning(record):
    assert len(record) == 1, [str(w.message) for w in record]
    return str(record[0].message)


def test_an_identical_second_call_does_not_warn():
    step, ts = _step(), _state()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(3):
            ts, _ = step(ts, _batch())
    assert record == []


def test_a_changed_batch_size_gives_one_warning_naming_both_paths():
    step, ts = _step(), _state()
    ts, _ = step(ts, _batch(8))
    with pytest.warns(RetraceWarning) as record:
        step(ts, _batch(6))
    assert _one_warning(record) == (
        "train_step was traced again (trace 2): batch/0 changed shape: f32[8,5] before, "
        "f32[6,5] now; batch/1 changed shape: i32[8] before, i32[6] now. Each new shape compiles "
        "the function again: keep shapes fixed (drop or pad the last partial batch, as fit does)."
    )


def test_the_warning_points_at_the_callers_line():
    step, ts = _step(), _state()
    ts, _ = step(ts, _batch(8))
    with pytest.warns(RetraceWarning) as record:
        step(ts, _batch(6))
    assert record[0].filename == __file__


def test_a_changed_input_dtype_gives_one_warning():
    step, ts = _step(), _state()
    ts, _ = step(ts, _batch())
    with pytest.warns(RetraceWarning) as record:
        step(ts, _batch(dtype=jnp.bfloat16))
    assert _one_warning(record).startswith(
        "train_step was traced again (trace 2): batch/0 changed dtype: f32[8,5] before, "
        "bf16[8,5] now. Each new dtype compiles the function again"
    )


def test_changed_param_dtypes_name_params_and_optimizer_paths():
    step, ts = jax.jit(watch_retraces(_sum_params, name="train_step")), _state(optax.adam(1e-3))
    step(ts, _batch())
    half = jn.train.cast_floating(ts.params, jnp.bfloat16)
    ts = ts._replace(params=half, opt_state=jn.train.cast_floating(ts.opt_state, jnp.bfloat16))
    with pytest.warns(RetraceWarning) as record:
        step(ts, _batch())
    message = _one_warning(record)
    assert "dense_0/b changed dtype: f32[4] before, bf16[4] now" in message
    assert message.count("changed dtype") == 4
    assert "(and 8 more)" in message  # 4 params, and mu, nu of each: 12 leaves


def test_a_new_param_gives_one_warning_naming_its_path():
    step = jax.jit(watch_retraces(_sum_params, name="train_step"))
    ts = _state()
    step(ts, _batch())
    grown = ts._replace(params={**ts.params, "dense_2": {"w": jnp.ones((3, 2))}})
    with pytest.warns(RetraceWarning) as record:
        step(grown, _batch())
    assert _one_warning(record) == (
        "train_step was traced again (trace 2): new leaves: params/dense_2/w (f32[3,2]). The "
        "pytree gained leaves (a new parameter or optimizer entry): rebuild the train state with "
        "the same net and optimizer, or expect one compile per structure."
    )


def test_a_removed_param_gives_one_warning_naming_its_path():
    step = jax.jit(watch_retraces(_sum_params, name="train_step"))
    ts = _state()
    step(ts, _batch())
    shrunk = ts._replace(params={"dense_0": ts.params["dense_0"]})
    with pytest.warns(RetraceWarning) as record:
        step(shrunk, _batch())
    assert _one_warning(record).startswith(
        "train_step was traced again (trace 2): leaves gone: params/dense_1/b (f32[3]), "
        "params/dense_1/w (f32[4,3]). The pytree lost leaves"
    )


def test_two_causes_give_two_warnings():
    step = jax.jit(watch_retraces(_sum_params, name="train_step"))
    ts = _state()
    step(ts, _batch(8))
    grown = ts._replace(params={**ts.params, "extra": jnp.ones(2)})
    with pytest.warns(RetraceWarning) as record:
        step(grown, _batch(4))
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "batch/0 changed shape" in messages[0]
    assert "new leaves: params/extra (f32[2])" in messages[1]


def test_a_python_scalar_then_an_array_is_a_weak_type_change():
    scale = jax.jit(watch_retraces(lambda x, factor: x * factor))
    scale(jnp.ones(2), 2.0)
    with pytest.warns(RetraceWarning) as record:
        scale(jnp.ones(2), jnp.float32(2.0))
    assert _one_warning(record) == (
        "<lambda> was traced again (trace 2): factor changed weak type: ~f32[] before, f32[] now. "
        "A Python scalar is weakly typed (~f32[]), an array is not: pass the same kind every time "
        "(jnp.float32(x) or jnp.asarray(x, dtype))."
    )


def test_a_new_static_value_is_named():
    def power(x, n):
        return x**n

    powered = jax.jit(watch_retraces(power), static_argnames="n")
    powered(jnp.ones(2), n=2)
    with pytest.warns(RetraceWarning, match=re.escape("n changed static value: 2 before, 3 now")):
        powered(jnp.ones(2), n=3)


def test_other_containers_with_the_same_leaves_are_a_structure_change():
    first = jax.jit(watch_retraces(lambda items: items[0], name="first"))
    first([jnp.ones(2)])
    with pytest.warns(RetraceWarning) as record:
        first((jnp.ones(2),))
    assert _one_warning(record).startswith(
        "first was traced again (trace 2): items changed structure: PyTreeDef([*]) before, "
        "PyTreeDef((*,)) now."
    )


def test_the_same_signature_traced_again_does_not_warn():
    watched = watch_retraces(_sum_params)
    ts = _state()
    jax.eval_shape(watched, ts, _batch())
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        jax.jit(watched)(ts, _batch())
    assert record == []


def test_the_fused_epoch_can_be_watched_with_its_signature_kept():
    step = jn.train.make_train_step(NET, jn.losses.softmax_cross_entropy, optax.sgd(0.1))
    run_epoch = jax.jit(
        watch_retraces(jn.train.make_epoch(step, 4), name="epoch"), donate_argnames="train_state"
    )
    x, y = _batch(8)
    ts = _state()
    ts, metrics, _ = run_epoch(ts, x, y, jnp.int32(0))
    ts, metrics, _ = run_epoch(ts, x, y, jnp.int32(1))
    assert metrics["loss"].shape == (2,)
    with pytest.warns(
        RetraceWarning, match=re.escape("epoch changed weak type: i32[] before, ~i32[] now")
    ):
        run_epoch(ts, x, y, 2)
