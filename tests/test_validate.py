"""jaxnet.validate: the one set of checks every settings group uses, and the messages they give."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

import jaxnet as jn
from jaxnet import validate


@pytest.mark.parametrize("value", [1, 7, np.int32(3), np.int64(2**40)])
def test_positive_int_takes_python_and_numpy_ints(value: object) -> None:
    result = validate.positive_int(value, "keep", owner="Checkpointing")
    assert result == int(value) and type(result) is int  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [0, -1, True, False, 1.0, "2", None, np.float32(2)])
def test_positive_int_refuses_anything_else(value: object) -> None:
    message = f"Checkpointing: keep must be a positive int, got {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate.positive_int(value, "keep", owner="Checkpointing")


def test_at_least_names_its_bound_and_the_owner_is_optional() -> None:
    assert validate.at_least(0, 0, "cooldown") == 0
    with pytest.raises(ValueError, match=r"^max_to_keep must be an int >= 1, got 0$"):
        validate.at_least(0, 1, "max_to_keep")
    with pytest.raises(ValueError, match=r"^lr_find: steps must be an int >= 2, got True$"):
        validate.at_least(True, 2, "steps", owner="lr_find")


def test_flag_takes_only_booleans() -> None:
    assert validate.flag(np.bool_(True), "asynchronous") is True
    with pytest.raises(TypeError, match=r"^Update: evaluate_ema must be True or False, got 1$"):
        validate.flag(1, "evaluate_ema", owner="Update")


@pytest.mark.parametrize("value", [0, 1, -0.5, 1.5, math.nan, True, "0.5"])
def test_in_unit_interval_is_open_at_both_ends(value: object) -> None:
    message = f"ReduceOnPlateau: factor must be in (0, 1), got {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        validate.in_unit_interval(value, "factor", owner="ReduceOnPlateau")
    assert validate.in_unit_interval(np.float32(0.5), "factor") == 0.5


def test_in_unit_interval_words_the_value_as_asked() -> None:
    with pytest.raises(ValueError, match=r"^with_ema: ema must be a decay in \(0, 1\) such as"):
        validate.in_unit_interval(2, "ema", owner="with_ema", what="a decay ", example=" such as")


@pytest.mark.parametrize("value", [-1e-9, math.nan, None, False])
def test_non_negative_refuses_negatives_nan_and_non_numbers(value: object) -> None:
    with pytest.raises(
        ValueError, match=rf"^EarlyStopping: min_delta must be >= 0, got {value!r}$"
    ):
        validate.non_negative(value, "min_delta", owner="EarlyStopping")
    assert validate.non_negative(0, "min_delta") == 0.0


def test_one_of_lists_the_choices_but_not_none() -> None:
    assert validate.one_of(None, (None, "min", "max"), "mode") is None
    with pytest.raises(ValueError, match=r"^mode must be 'min' or 'max', got 'up'$"):
        validate.one_of("up", (None, "min", "max"), "mode")
    with pytest.raises(ValueError, match=r"^kind must be 'a', 'b' or 'c', got 'd'$"):
        validate.one_of("d", ("a", "b", "c"), "kind")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: jn.train.Streaming(prefetch=0), "Streaming: prefetch must be a positive int"),
        (lambda: jn.train.Streaming(log_every=True), "Streaming: log_every must be a positive int"),
        (lambda: jn.train.Update(accumulate=0), "Update: accumulate must be a positive int"),
        (lambda: jn.train.Checkpointing(keep=0), "Checkpointing: keep must be a positive int"),
        (lambda: jn.train.Checkpointing(every=-2), "Checkpointing: every must be a positive int"),
        (lambda: jn.train.EarlyStopping(patience=0), "EarlyStopping: patience must be a positive"),
        (lambda: jn.train.ReduceOnPlateau(factor=1), "ReduceOnPlateau: factor must be in (0, 1)"),
        (lambda: jn.train.Update(ema=1.0), "Update: ema must be a decay in (0, 1) such as 0.999"),
    ],
)
def test_the_settings_groups_check_with_it(make: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        make()  # type: ignore[operator]


def test_the_groups_take_numpy_counts() -> None:
    """A count from NumPy (an argparse default, a sweep's grid) is a count like any other."""
    assert jn.train.Checkpointing(every=np.int64(5)).every == 5
    assert jn.train.Streaming(prefetch=np.int32(3)).prefetch == 3


def test_numpy_settings_are_kept_as_python_numbers_so_config_json_stays_json() -> None:
    """``Update(accumulate=np.int64(2))`` reaches config.json: it must be written as 2."""
    update = jn.train.Update(accumulate=np.int64(2), ema=np.float32(0.5))
    assert type(update.accumulate) is int and type(update.ema) is float
    rule = jn.train.ReduceOnPlateau(patience=np.int64(2), factor=np.float64(0.5))
    assert type(rule.patience) is int and type(rule.factor) is float
    assert type(jn.train.Streaming(steps_per_call=np.int16(4)).steps_per_call) is int
    assert type(jn.train.Checkpointing(keep=np.int64(1)).keep) is int
    assert type(jn.train.EarlyStopping(patience=np.int8(1)).patience) is int


def test_a_step_with_another_optimizer_than_the_state_is_one_clear_error() -> None:
    """Issue 25, item 10: optax once failed inside with ``'ScaleByAdamState' object has no
    attribute 'trace'``."""
    import jax
    import jax.numpy as jnp
    import optax

    net = jn.serial(jn.nn.Dense(3), jn.nn.Tanh, jn.nn.Dense(1))
    state = jn.train.TrainState.create(net, optax.adam(0.1), (None, 2), key=jax.random.key(0))
    batch = (jnp.ones((4, 2)), jnp.zeros((4, 1)))
    step = jax.jit(jn.train.make_train_step(net, jn.losses.mse, optax.sgd(0.1, momentum=0.9)))
    message = (
        "make_train_step: train_state.opt_state was made by another optimizer than the step's: "
        "it holds ScaleByAdamState, EmptyState, the step's optimizer makes TraceState, "
        "EmptyState; create the state with the step's optimizer "
        "(jn.train.TrainState.create(net, optimizer, ...))"
    )
    with pytest.raises(TypeError) as caught:
        step(state, batch)
    assert str(caught.value).splitlines()[0] == message  # (JAX adds a note on its frames)
    same = jax.jit(jn.train.make_train_step(net, jn.losses.mse, optax.adam(0.3)))
    assert int(same(state, batch)[0].step) == 1  # another learning rate is the same optimizer
