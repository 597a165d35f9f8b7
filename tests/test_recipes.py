"""Recipes: configs are checked, nets are the documented architectures, baselines are reported."""

import re

import jax
import pytest

import jaxnet as jn
from jaxnet import recipes


@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_builds_and_its_net_fits_its_data(name):
    job = recipes.build(recipes.make_config(name))
    x = job.data.x_train[:2]
    y, _ = job.net.apply(job.initial_state().params, {}, jax.numpy.asarray(x))
    expected = (
        (2, *job.data.y_train.shape[1:], job.data.num_classes)
        if job.data.num_classes
        else job.data.y_train[:2].shape
    )
    assert y.shape == expected


def test_architectures():
    paths = [
        row.path
        for row in jn.summary_rows(recipes.build(recipes.make_config("digits-cnn")).net, (None, 64))
    ]
    assert paths[:4] == ["serial/reshape_0", "serial/conv_0", "serial/relu_0", "serial/max_pool_0"]
    lstm = recipes.build(recipes.make_config("temperature-lstm")).net
    assert [row.path for row in jn.summary_rows(lstm, (None, 28, 1))] == [
        "serial/lstm_0",
        "serial/dense_0",
    ]
    gru = recipes.build(recipes.make_config("temperature-lstm", cell="gru", depth=2)).net
    assert [row.path for row in jn.summary_rows(gru, (None, 28, 1))] == [
        "serial/gru_0",
        "serial/gru_1",
        "serial/dense_0",
    ]


def test_forecast_recipe_reports_the_persistence_baseline():
    job = recipes.build(recipes.make_config("temperature-lstm"))
    assert job.baselines["persistence test_loss"] == pytest.approx(
        jn.data.persistence_mse(job.data)
    )


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        (
            "temperature-lstm",
            {"cell": "transformer"},
            "unknown cell 'transformer' (known: lstm, gru, rnn)",
        ),
        ("reverse-digits", {"heads": 3}, "width=32 must divide by heads=3"),
        ("reverse-digits", {"heads": 0}, "heads must be an int >= 1, got 0"),
        ("digits-mlp", {"cell": "lstm"}, "unknown option 'cell' for recipe 'digits-mlp'"),
        (
            "digits-mlp",
            {"precision": "fp8"},
            "precision must be one of ('float32', 'bfloat16', 'float16'), got 'fp8'",
        ),
    ],
)
def test_bad_recipe_settings(name, overrides, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        recipes.make_config(name, **overrides)
