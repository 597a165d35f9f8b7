"""Recipes: configs are checked, nets are the documented architectures, baselines are reported."""

import json
import re

import jax
import numpy as np
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


def _unet(**overrides):
    return recipes.build(recipes.make_config("digits-unet", **overrides))


def test_unet_recipe_is_a_graph_with_a_skip_connection_on_the_digits():
    job = _unet()
    assert job.data.name == "digits" and job.config["width"] == 16 and job.config["depth"] == 1
    rows = {row.path: row for row in jn.summary_rows(job.net, (None, 64))}
    assert rows["graph/image"].output_shape == (None, 8, 8, 1)
    assert rows["graph/pool_0"].output_shape == (None, 4, 4, 16)  # the encoder pools to 4×4
    assert rows["graph/bottom/conv_0"].output_shape == (None, 4, 4, 32)
    assert rows["graph/up_0"].output_shape == (None, 8, 8, 16)  # upsampled back to 8×8
    up, down = rows["graph/up_0"].output_shape, rows["graph/down_0/relu_0"].output_shape
    join = rows["graph/join_0"]
    assert join.input_shape == (up, down)  # the decoder's map and the encoder's, in that order
    assert join.output_shape == (None, 8, 8, up[-1] + down[-1])
    assert rows["graph/decode_0/conv_0"].param_shapes["w"] == (3, 3, 16 + 16, 16)
    assert rows["graph/classes/dense_0"].output_shape == (None, 10)
    params = job.initial_state().params
    assert sorted(params) == ["bottom", "classes", "decode_0", "down_0", "up_0"]


def test_unet_skip_joins_the_encoder_map_itself():
    job = _unet(width=4)
    params = job.initial_state().params
    x = jax.numpy.asarray(job.data.x_train[:3])
    outputs = jn.intermediates(job.net, params, {}, x)
    join = outputs["graph/join_0"]
    assert join.shape == (3, 8, 8, 8)
    np.testing.assert_array_equal(join[..., :4], outputs["graph/up_0"])
    np.testing.assert_array_equal(join[..., 4:], outputs["graph/down_0"])


@pytest.mark.parametrize(("depth", "bottom"), [(2, (None, 2, 2, 32)), (3, (None, 1, 1, 64))])
def test_unet_depth_is_levels_down_and_back_up(depth, bottom):
    rows = {row.path: row for row in jn.summary_rows(_unet(width=8, depth=depth).net, (None, 64))}
    assert rows["graph/bottom/relu_0"].output_shape == bottom
    for level in range(depth):
        side, channels = 8 // 2**level, 8 * 2**level
        assert rows[f"graph/join_{level}"].output_shape == (None, side, side, 2 * channels)
    assert f"graph/join_{depth}" not in rows
    assert rows["graph/classes/dense_0"].output_shape == (None, 10)


@pytest.mark.parametrize(
    ("depth", "message"),
    [
        (0, "a U-Net needs depth >= 1 (levels down and back up), got 0"),
        (
            4,
            "a U-Net of depth 4 halves the image 4 times, so its sides must divide by 16; "
            "the images are 8×8: use a smaller depth",
        ),
    ],
)
def test_unet_depth_that_cannot_be_built_is_refused(depth, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _unet(depth=depth)


def test_unet_of_depth_one_on_odd_images_is_refused():
    with pytest.raises(
        ValueError,
        match=re.escape(
            "a U-Net of depth 1 halves the image once, so its sides must divide by 2; the "
            "images are 7×8"
        )
        + "$",
    ):
        recipes.unet(4, 1, "relu", 10, (7, 8, 1))


def test_unet_on_a_file_of_images_whose_sides_do_not_halve(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "odd.npz"
    np.savez(path, x=rng.normal(size=(40, 6, 6)), y=np.arange(40) % 2)
    job = recipes.build(recipes.make_config("digits-unet", width=4) | {"data": str(path)})
    assert job.net.init(jax.random.key(0), (None, 6, 6))[0] == (None, 2)
    with pytest.raises(
        ValueError, match=re.escape("its sides must divide by 4; the images are 6×6")
    ):
        recipes.build(recipes.make_config("digits-unet", depth=2) | {"data": str(path)})


def test_unet_config_round_trip():
    job = _unet(width=4)
    config = json.loads(json.dumps(jn.to_config(job.net)))  # through JSON, as model.json holds it
    nodes = config["net"]["arguments"]["nodes"]["dict"]
    assert nodes["join_0"] == [{"type": "nn.FanInConcat"}, ["up_0", "down_0"]]
    assert nodes["up_0"][0]["type"] == "nn.ConvTranspose"
    rebuilt = jn.from_config(config)
    assert jn.to_config(rebuilt) == config
    _, params, state = job.net.init(jax.random.key(1), (None, 64))
    again = rebuilt.init(jax.random.key(1), (None, 64))[1]
    assert jax.tree.all(jax.tree.map(np.array_equal, again, params))
    x = jax.numpy.asarray(job.data.x_test[:5])
    np.testing.assert_array_equal(
        rebuilt.apply(params, state, x)[0], job.net.apply(params, state, x)[0]
    )
    assert recipes.build(job.config).config == job.config  # the recipe's config rebuilds the job
