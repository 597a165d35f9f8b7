"""The learning-rate finder: ``jn.train.lr_find`` and ``jaxnet lr-find``.

The reference is the same range test run one rate at a time by hand: the same initial state,
the same shuffled batches, and before each step the optimizer's learning rate set to that
step's rate (``optax.inject_hyperparams``). The finder's one compiled run must give the same
loss curve.
"""

from __future__ import annotations

import re

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet import cli
from tests import references_training as by_hand
from tests.helpers_training import hand_loop_start, load_digits, small_net

LOSS = jn.losses.softmax_cross_entropy


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _one_rate_at_a_time(data, rates, batch_size):
    """The losses of a hand-written loop: one jitted step per rate, the rate injected, over
    fit's shuffles one after another (the first ``len(rates)`` batches of shuffles 0, 1, ...)."""
    adam = optax.inject_hyperparams(optax.adam)(learning_rate=float(rates[0]))
    params, run_key, step, opt_state = hand_loop_start(small_net(), LOSS, adam)
    batches = []
    for shuffle in range(-(-len(rates) // (data.num_train // batch_size))):
        batches += by_hand.shuffled_batches(
            run_key, shuffle, data.x_train, data.y_train, batch_size
        )
    losses = []
    for rate, (x, y) in zip(rates, batches, strict=False):
        opt_state.hyperparams["learning_rate"] = np.float32(rate)
        params, opt_state, report = step(params, opt_state, x, y)
        losses.append(float(report["loss"]))
    return np.array(losses)


def test_the_curve_is_the_same_rates_run_one_at_a_time(digits):
    result = jn.train.lr_find(
        small_net(), digits, loss=LOSS, optimizer=optax.adam, min_lr=1e-4, max_lr=1.0, steps=30,
        batch_size=64,
    )  # fmt: skip
    assert not result.diverged and len(result.losses) == 30  # 30 steps: 1.6 shuffles of 19
    np.testing.assert_allclose(
        result.learning_rates, 1e-4 * 1e4 ** (np.arange(30) / 29), rtol=1e-12
    )
    expected = _one_rate_at_a_time(digits, result.learning_rates, 64)
    np.testing.assert_allclose(result.losses, expected, rtol=2e-4, atol=1e-5)
    average, smoothed = 0.0, []
    for i, loss in enumerate(result.losses):  # the bias-corrected moving average, by hand
        average = 0.9 * average + 0.1 * loss
        smoothed.append(average / (1 - 0.9 ** (i + 1)))
    np.testing.assert_allclose(result.smoothed, smoothed, rtol=1e-5)


def test_the_run_stops_where_the_loss_diverges_and_suggests_a_rate_before(digits, tmp_path):
    result = jn.train.lr_find(
        small_net(), digits, loss=LOSS, optimizer="sgd", max_lr=1e3, plot=tmp_path / "lr.png"
    )
    assert result.diverged and len(result.losses) < 100
    assert np.isfinite(result.losses).all() and np.isfinite(result.smoothed).all()
    stop = result.smoothed[-1]
    assert stop <= 4.0 * result.smoothed.min()  # the diverging step itself is left out
    assert 1e-7 <= result.suggestion < result.lowest < result.learning_rates[-1]
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"min_lr": 0.0}, ValueError, r"need 0 < min_lr < max_lr \(finite\), got min_lr=0\.0"),
        ({"min_lr": 1.0, "max_lr": 0.1}, ValueError, r"need 0 < min_lr < max_lr"),
        ({"steps": 1}, ValueError, r"steps must be an int >= 2, got 1"),
        ({"batch_size": 10_000}, ValueError, r"batch_size=10000 is larger than the 1257"),
        ({"smoothing": 1.0}, ValueError, r"smoothing must be in \[0, 1\), got 1\.0"),
        ({"diverge": 1.0}, ValueError, r"diverge must be > 1, got 1\.0"),
        ({"optimizer": "adamm"}, ValueError, r"unknown optimizer 'adamm' \(known: adam, "),
        (
            {"optimizer": optax.adam(1e-3)},
            TypeError,
            r"optimizer must be a name such as 'adam' or a function of the learning rate such "
            r"as optax\.adam \(the finder sets the rate\), got GradientTransformationExtraArgs$",
        ),
    ],
)
def test_bad_arguments_are_named(digits, kwargs, error, message):
    with pytest.raises(error, match=rf"^lr_find: {message}"):
        jn.train.lr_find(small_net(), digits, loss=LOSS, **kwargs)


def test_lr_find_needs_an_in_memory_dataset():
    stream = jn.data.stream([(np.zeros((4, 64), np.float32), np.zeros(4, np.int32))])
    with pytest.raises(TypeError, match=r"^lr_find: data must be a jaxnet.data.Dataset"):
        jn.train.lr_find(small_net(), stream, loss=LOSS)


def test_jaxnet_lr_find_prints_the_suggestion_and_draws_the_plot(tmp_path, capsys):
    out = tmp_path / "iris.png"
    status = cli.main(["lr-find", "iris", "--steps", "30", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0 and out.read_bytes()[:4] == b"\x89PNG"
    line = re.fullmatch(
        r"iris: suggested learning rate (\S+) \(the steepest descent of the smoothed loss; its "
        r"lowest at (\S+)\); (\d+) steps of adam from 1e-07, (did not diverge|stopped where the "
        rf"loss diverged); plot: {re.escape(str(out))}\n",
        printed,
    )
    assert line is not None, printed
    assert float(line[1]) < float(line[2]) and int(line[3]) <= 30
    assert cli.main(["lr-find", "iris", "--out", str(tmp_path / "x.jpg")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"jaxnet: error: --out {tmp_path / 'x.jpg'}: the plot is a PNG file; name it FILE.png"
    )


def test_a_loss_that_is_negative_diverges_by_its_rise(digits):
    shifted = jn.train.lr_find(
        small_net(), digits, loss=lambda p, y: LOSS(p, y) - 5.0, max_lr=1e3, optimizer="sgd"
    )
    plain = jn.train.lr_find(small_net(), digits, loss=LOSS, max_lr=1e3, optimizer="sgd")
    assert len(shifted.losses) > 10 and shifted.diverged  # not stopped at once by the sign
    np.testing.assert_allclose(shifted.losses[:10], plain.losses[:10] - 5.0, rtol=1e-5)


def test_a_loss_not_finite_at_the_first_step_is_named(digits):
    with pytest.raises(ValueError, match=r"^lr_find: the loss is not finite at the first step"):
        jn.train.lr_find(small_net(), digits, loss=lambda p, y: LOSS(p, y) * jnp.nan)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--min-lr", "0"], "--min-lr and --max-lr need 0 < MIN < MAX, got --min-lr 0 --max-lr 10"),
        (["--max-lr", "1e-8"], "--min-lr and --max-lr need 0 < MIN < MAX, got --min-lr 1e-07 --max-lr 1e-08"),
        (["--steps", "1"], "--steps must be an int >= 2, got 1"),
    ],
)  # fmt: skip
def test_jaxnet_lr_find_names_a_bad_flag(flags, message, tmp_path, capsys):
    assert cli.main(["lr-find", "iris", "--out", str(tmp_path / "x.png"), *flags]) == 2
    assert capsys.readouterr().err.strip() == f"jaxnet: error: {message}"
    assert not (tmp_path / "x.png").exists()
