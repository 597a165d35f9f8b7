"""Reducing the learning rate on a plateau: ``Update(reduce_on_plateau=ReduceOnPlateau(...))``.

References: the rule's decisions against sequences worked by hand from Keras's documented
semantics, and a reduced run against a hand-written loop of the same steps whose SGD rate is
changed by hand at the epoch the rule says.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from tests import references_training as by_hand
from tests.helpers_training import assert_same_leaves, hand_loop_start, load_digits, small_net

LOSS = jn.losses.softmax_cross_entropy
Rule = jn.train.ReduceOnPlateau


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _rows(values):
    return [{"val_loss": v} for v in values]


@pytest.mark.parametrize(
    ("rule", "values", "scales"),
    [
        # improving every epoch: never reduced
        (Rule(monitor="val_loss", patience=1), [3, 2, 1], [1, 1, 1]),
        # 2 epochs without improvement on 1.0: reduced after the 4th, counting again from 0
        (Rule(monitor="val_loss", factor=0.5, patience=2), [2, 1, 1.5, 1.2, 1.1, 1.3], [1, 1, 1, 0.5, 0.5, 0.25]),
        # an improvement smaller than min_delta is none
        (Rule(monitor="val_loss", factor=0.5, patience=1, min_delta=0.2), [1, 0.9], [1, 0.5]),
        # cooldown: after a reduction, 1 epoch is not counted
        (Rule(monitor="val_loss", factor=0.5, patience=1, cooldown=1), [1, 2, 2, 2], [1, 0.5, 0.5, 0.25]),
        # an improving epoch uses the cooldown up too: the next bad one counts (PyTorch's rule)
        (Rule(monitor="val_loss", factor=0.5, patience=1, cooldown=1), [1, 2, 0.5, 0.6, 0.7], [1, 0.5, 0.5, 0.25, 0.25]),
        # 2 epochs of cooldown, then 2 bad epochs in a row before the next reduction
        (Rule(monitor="val_loss", factor=0.5, patience=2, cooldown=2), [1, 2, 2, 2, 2, 2, 2, 2], [1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]),
        # never below min_scale
        (Rule(monitor="val_loss", factor=0.1, patience=1, min_scale=0.05), [1, 2, 2, 2], [1, 0.1, 0.05, 0.05]),
        # an accuracy is maximized
        (Rule(monitor="val_accuracy", factor=0.5, patience=1), [0.5, 0.6, 0.55], [1, 1, 0.5]),
    ],
)  # fmt: skip
def test_the_rule_decides_as_worked_by_hand(rule, values, scales):
    key = rule.monitor
    rows = [{key: v} for v in values]
    assert [rule.scale_after(rows[: i + 1]) for i in range(len(rows))] == pytest.approx(scales)


def test_a_reduced_run_is_the_hand_written_loop_with_its_rate_changed(digits):
    # train_loss falls every epoch; in "max" mode that is no improvement, so with patience 1
    # the rate halves after every epoch from the second on: 0.1, 0.1, 0.05
    rule = Rule(monitor="train_loss", mode="max", factor=0.5, patience=1)
    result = jn.train.fit(
        small_net(),
        digits,
        optimizer=jn.train.optimizer("sgd", learning_rate=0.1),
        loss=LOSS,
        epochs=3,
        batch_size=64,
        update=jn.train.Update(reduce_on_plateau=rule),
        progress=False,
    )
    assert [r["lr_scale"] for r in result.history] == [1.0, 1.0, 0.5]
    assert [r["lr"] for r in result.history] == pytest.approx([0.1, 0.1, 0.05])
    sgd = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1)
    params, run_key, step, opt_state = hand_loop_start(small_net(), LOSS, sgd)
    for epoch, rate in enumerate([0.1, 0.1, 0.05]):
        opt_state.hyperparams["learning_rate"] = np.float32(rate)
        for x, y in by_hand.shuffled_batches(run_key, epoch, digits.x_train, digits.y_train, 64):
            params, opt_state, _ = step(params, opt_state, x, y)
    for p, q in zip(
        jax.tree.leaves(result.train_state.params), jax.tree.leaves(params), strict=True
    ):
        np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)


def test_a_resumed_run_takes_the_same_decisions_and_load_restores_it(digits, tmp_path):
    rule = Rule(monitor="train_loss", mode="max", factor=0.5, patience=1)  # halves each epoch
    update = jn.train.Update(reduce_on_plateau=rule)
    kw = dict(
        optimizer=jn.train.optimizer("adam", learning_rate=3e-2),
        loss=LOSS,
        metrics={"accuracy": jn.metrics.accuracy},
        batch_size=64,
        update=update,
        progress=False,
    )
    whole = jn.train.fit(small_net(), digits, epochs=6, run_dir=tmp_path / "whole", **kw)
    jn.train.fit(small_net(), digits, epochs=3, run_dir=tmp_path / "cut", **kw)
    resumed = jn.train.fit(
        small_net(), digits, epochs=6, run_dir=tmp_path / "cut", resume=True, **kw
    )
    assert_same_leaves(whole.train_state.params, resumed.train_state.params)
    scales = [r["lr_scale"] for r in whole.history]
    assert [r["lr_scale"] for r in resumed.history] == scales == [1, 1, 0.5, 0.25, 0.125, 0.0625]
    run = jn.train.load(tmp_path / "cut")
    assert run.train_state is not None
    assert jn.train.lr_scale(run.train_state.opt_state) == jn.train.lr_scale(
        whole.train_state.opt_state
    )


def test_without_a_named_optimizer_the_history_has_the_scale_only(digits):
    result = jn.train.fit(
        small_net(),
        digits,
        optimizer=optax.adam(1e-2),
        loss=LOSS,
        epochs=1,
        batch_size=64,
        update=jn.train.Update(reduce_on_plateau=Rule()),
        progress=False,
    )
    assert result.history[0]["lr_scale"] == 1.0 and "lr" not in result.history[0]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: Rule(factor=1.5), ValueError, r"^ReduceOnPlateau: factor must be in \(0, 1\), got 1\.5$"),
        (lambda: Rule(patience=0), ValueError, r"^ReduceOnPlateau: patience must be an int >= 1, got 0$"),
        (lambda: Rule(cooldown=-1), ValueError, r"^ReduceOnPlateau: cooldown must be an int >= 0"),
        (lambda: Rule(min_scale=-0.1), ValueError, r"^ReduceOnPlateau: min_scale must be >= 0"),
        (lambda: Rule(mode="up"), ValueError, r"^ReduceOnPlateau: mode must be 'min' or 'max'"),
        (lambda: jn.train.Update(reduce_on_plateau=0.1), TypeError, r"^Update: reduce_on_plateau must be"),
        (lambda: jn.train.lr_scale(optax.sgd(0.1).init({"w": jnp.ones(2)})), ValueError, r"^lr_scale: the optimizer state holds no"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_fit_refuses_a_monitor_the_history_lacks(digits):
    with pytest.raises(ValueError, match=r"^fit: reduce_on_plateau cannot monitor 'val_acc'"):
        jn.train.fit(
            small_net(),
            digits,
            optimizer=optax.sgd(0.1),
            loss=LOSS,
            epochs=1,
            update=jn.train.Update(reduce_on_plateau=Rule(monitor="val_acc")),
            progress=False,
        )


def test_jaxnet_train_plateau_writes_the_rate_into_the_log(tmp_path, capsys):
    from jaxnet import cli

    out = str(tmp_path / "run")
    args = ["train", "iris", "--plateau", "1", "--epochs", "3", "--no-progress", "--out", out]
    assert cli.main(args) == 0
    rows = jn.train.load(out).history
    assert rows[0]["lr"] == pytest.approx(0.01)  # iris's rate, at first
    assert all(row["lr"] == pytest.approx(0.01 * row["lr_scale"]) for row in rows)
    capsys.readouterr()
    assert cli.main(["train", "--resume", out, "--epochs", "4", "--plateau", "2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "jaxnet: error: --resume keeps the run's config; cannot change --plateau"
    )
    assert cli.main(["train", "iris", "--plateau", "0", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == "jaxnet: error: --plateau must be an int >= 1, got 0"
