"""Many models in one program: members equal the models trained one at a time."""

import re

import jax
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet import recipes, sweep

IRIS = jn.data.load("iris")
NET = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
SETTINGS = {"loss": jn.losses.softmax_cross_entropy, "metrics": {"accuracy": jn.metrics.accuracy}}
SETTINGS |= {"epochs": 3, "batch_size": 16}


def test_members_equal_models_trained_one_at_a_time():
    result = sweep.fit_many(
        NET, IRIS, optimizer=optax.adam, learning_rates=[0.003, 0.03], seeds=[0, 5], **SETTINGS
    )
    assert result.members == [(0.003, 0), (0.003, 5), (0.03, 0), (0.03, 5)]
    assert jax.tree.leaves(result.train_states.params)[0].shape[0] == 4
    for index in (1, 2):
        lr, seed = result.members[index]
        alone = jn.train.fit(
            NET,
            IRIS,
            optimizer=optax.inject_hyperparams(optax.adam)(learning_rate=lr),
            seed=seed,
            progress=False,
            **SETTINGS,
        )
        member = result.member_state(index)
        assert int(member.step) == int(alone.train_state.step)
        # batched matrix products may round differently from single ones: equal to float tolerance
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            member.params,
            alone.train_state.params,
        )
        assert result.history[index][-1]["train_loss"] == pytest.approx(
            alone.history[-1]["train_loss"], rel=1e-5
        )
    assert result.diverged_at == [None] * 4


def test_a_diverging_member_stops_alone():
    series = jn.data.load("temperature")
    net = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(1))
    options = {"loss": jn.losses.mse, "epochs": 3, "batch_size": 64}
    result = sweep.fit_many(
        net, series, optimizer=optax.sgd, learning_rates=[0.01, 1e8], seeds=[0], **options
    )
    assert result.diverged_at[0] is None
    with pytest.raises(jn.train.NonFiniteError) as alone:
        jn.train.fit(
            net,
            series,
            optimizer=optax.inject_hyperparams(optax.sgd)(learning_rate=1e8),
            progress=False,
            **options,
        )
    assert result.diverged_at[1] == alone.value.step
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(result.member_state(1).params))
    assert result.history[0][-1]["train_loss"] < result.history[0][0]["train_loss"]


def test_grid_writes_a_run_folder(tmp_path):
    rows = recipes.grid(
        "xor",
        learning_rates=[0.05],
        seeds=2,
        widths=[4],
        depths=[0, 1],
        epochs=15,
        run_dir=tmp_path / "sweep",
    )
    assert [(r["depth"], r["seed"]) for r in rows] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    linear = [r["test_accuracy"] for r in rows if r["depth"] == 0]
    hidden = [r["test_accuracy"] for r in rows if r["depth"] == 1]
    assert max(linear) <= 0.75 < min(hidden)
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == [
        "config.json",
        "results.jsonl",
        "sweep.png",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rates": []}, "fit_many: needs at least one learning rate and one seed"),
        ({"learning_rates": [0.0]}, "fit_many: learning rates must be finite numbers > 0, got 0.0"),
        ({"seeds": [-1]}, "fit_many: seeds must be ints >= 0, got -1"),
        ({"batch_size": 500}, "fit_many: batch_size must be in [1, 120], got 500"),
    ],
)
def test_bad_sweeps(kwargs, message):
    options = {"optimizer": optax.adam, "learning_rates": [0.01], "seeds": [0]} | SETTINGS | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        sweep.fit_many(NET, IRIS, **options)


def test_grid_rejects_bad_seed_counts():
    with pytest.raises(
        ValueError, match=re.escape("seeds must be a positive int (how many), got 0")
    ):
        recipes.grid("xor", learning_rates=[0.1], seeds=0)


def test_the_results_table_writes_a_dash_for_a_member_that_never_diverged() -> None:
    """Issue 25, item 9: the sweep table once printed ``None``."""
    rows = [{"lr": 0.1, "diverged_at": None}, {"lr": 10.0, "diverged_at": 3}]
    assert jn.sweep.results_table(rows, ["lr", "diverged_at"]).splitlines() == [
        "lr   diverged_at",
        "0.1  -",
        "10   3",
    ]
