"""Streaming batches whose ``x`` is a tuple or dict of arrays (the inputs of a net of several
inputs): training equal to the same steps written by hand for every chunk size (a padded last
chunk included), tuple batches equal to dict batches, evaluation weighted by examples, a run
folder that resumes bit for bit and predicts on raw inputs, a Grain pipeline, the replay of a
failed step, and one clear error for every malformed batch."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn

RNG = np.random.default_rng(3)
LEFT = RNG.normal(2.0, 3.0, size=(64, 5)).astype(np.float32)
RIGHT = RNG.normal(-1.0, 0.5, size=(64, 2, 3)).astype(np.float32)
LABELS = (LEFT[:, 0] / 3 + RIGHT[:, 0, 1] > -0.3).astype(np.int32)
BATCH, LR, EPOCHS = 8, 0.1, 2
SHAPES = {"left": (None, 5), "right": (None, 2, 3)}


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def _net(inputs=("left", "right")) -> jn.Layer:
    return jn.graph(
        {
            "a": (jn.nn.Dense(4), inputs[0]),
            "flat": (jn.nn.Flatten, inputs[1]),
            "b": (jn.nn.Dense(4), "flat"),
            "join": (jn.nn.FanInConcat(-1), ("a", "b")),
            "out": (jn.nn.Dense(2), "join"),
        },
        inputs=inputs,
    )


def _dict_batches(rows=range(0, 64, BATCH), left=LEFT):
    return [
        ({"left": left[i : i + BATCH], "right": RIGHT[i : i + BATCH]}, LABELS[i : i + BATCH])
        for i in rows
    ]


def _kw(**kwargs):
    options = {"loss": jn.losses.softmax_cross_entropy, "optimizer": optax.sgd(LR)}
    return options | {"epochs": EPOCHS, "progress": False} | kwargs


def _by_hand(net, batches, epochs=EPOCHS):
    """The same steps with jax.grad and optax over the batches in order, every epoch."""
    params = jn.train.TrainState.create(net, optax.sgd(LR), SHAPES, key=jax.random.key(0)).params
    opt = optax.sgd(LR)
    opt_state = opt.init(params)

    def loss(params, x, y):
        return jn.losses.softmax_cross_entropy(net.apply(params, {}, x)[0], y)

    for _ in range(epochs):
        for x, y in batches:
            grads = jax.grad(loss)(params, jax.tree.map(jnp.asarray, x), jnp.asarray(y))
            updates, opt_state = opt.update(grads, opt_state)
            params = optax.apply_updates(params, updates)
    return params


def _close(a, b, atol=1e-6):
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), atol=atol)


@pytest.mark.parametrize("steps_per_call", [1, 3, None])
@pytest.mark.parametrize("source", ["list", "function"])
def test_training_equals_the_same_steps_by_hand(steps_per_call, source):
    # 8 batches in chunks of 3: a list's pass ends in a chunk of 2 compiled at that size; a
    # function's pass has no length, so its last chunk is padded to 3 and the padding skipped
    batches = _dict_batches()
    train = batches if source == "list" else (lambda epoch: iter(batches))
    stream = jn.data.stream(train, num_classes=2)
    result = jn.train.fit(
        _net(), stream, streaming=jn.train.Streaming(steps_per_call=steps_per_call), **_kw()
    )
    assert result.history[-1]["step"] == EPOCHS * len(batches)
    _close(result.train_state.params, _by_hand(_net(), batches))


def test_rows_inside_an_epoch_cut_and_pad_tree_chunks():
    """log_every=3 ends chunks at steps 3, 6, ...; the cut chunks run padded."""
    batches = _dict_batches()
    stream = jn.data.stream(lambda epoch: iter(batches), num_classes=2)
    rows = []

    class Steps:
        def log(self, step, scalars):
            pass

        def log_steps(self, step, row):
            rows.append(step)

        def close(self):
            pass

    result = jn.train.fit(
        _net(),
        stream,
        streaming=jn.train.Streaming(steps_per_call=4, log_every=3),
        loggers=[Steps()],
        **_kw(),
    )
    assert result.history[-1]["step"] == EPOCHS * len(batches)
    assert rows == [3, 6, 9, 12, 15]
    _close(result.train_state.params, _by_hand(_net(), batches))


def test_dict_keys_may_come_in_any_order():
    """Batches whose dicts list the parts in another order are the same batches."""
    batches = _dict_batches()
    turned = [({"right": x["right"], "left": x["left"]}, y) for x, y in batches]
    mixed = [batches[0], *turned[1:]]
    last = ({"right": RIGHT[:3], "left": LEFT[:3]}, LABELS[:3])
    stream = jn.data.stream(mixed, val=[turned[0], last], num_classes=2)
    result = jn.train.fit(_net(), stream, **_kw())
    _close(result.train_state.params, _by_hand(_net(), batches))
    first = ({"a": LEFT[:8], "b": RIGHT[:8, 0]}, LABELS[:8])
    swapped = ({"b": LEFT[:8], "a": RIGHT[:8, 0]}, LABELS[:8])  # each key on the other's part
    with pytest.raises(
        jn.data.StreamError,
        match=exactly(
            "stream: train batch 1 of epoch 0: x has shape {'a': (8, 3), 'b': (8, 5)} and y "
            "(8,), but the first training batch had {'a': (8, 5), 'b': (8, 3)} and (8,); every "
            "training batch must have the same shapes"
        ),
    ):
        list(jn.data.stream([first, swapped]).batches("train", epoch=0))


def test_tuple_batches_train_as_dict_batches():
    by_key = jn.train.fit(_net(), jn.data.stream(_dict_batches(), num_classes=2), **_kw())
    tuples = [((x["left"], x["right"]), y) for x, y in _dict_batches()]
    stream = jn.data.stream(tuples, num_classes=2)
    assert stream.feature_shape == ((5,), (2, 3))
    by_place = jn.train.fit(_net(), stream, **_kw())
    _close(by_key.train_state.params, by_place.train_state.params, atol=0)


def test_evaluation_weights_every_batch_by_its_examples():
    # validation batches of 8 and a last one of 3 (a smaller one is fine for evaluation)
    last = ({"left": LEFT[24:27], "right": RIGHT[24:27]}, LABELS[24:27])
    val = [*_dict_batches(rows=[0, 8, 16]), last]
    stream = jn.data.stream(_dict_batches(), val=val, num_classes=2)
    result = jn.train.fit(_net(), stream, metrics={"accuracy": jn.metrics.accuracy}, **_kw())
    params = result.train_state.params
    logits = _net().apply(params, {}, {"left": LEFT[:27], "right": RIGHT[:27]})[0]
    np.testing.assert_allclose(
        result.history[-1]["val_loss"],
        jn.losses.softmax_cross_entropy(logits, LABELS[:27]),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        result.history[-1]["val_accuracy"], np.mean(np.argmax(logits, -1) == LABELS[:27])
    )


def test_a_run_folder_resumes_bit_for_bit_and_predicts_on_raw_inputs(tmp_path):
    """Batches standardized by the caller, the preprocessing given to the stream: the run
    folder's model takes raw inputs."""
    mean = {"left": LEFT.mean(0), "right": RIGHT.mean(0)}
    std = {"left": LEFT.std(0), "right": RIGHT.std(0)}
    preprocessing = jn.data.TreePreprocessing(
        {k: jn.data.Preprocessing(mean[k].shape, "float32", mean[k], std[k]) for k in mean}
    )
    scaled = [({k: (x[k] - mean[k]) / std[k] for k in x}, y) for x, y in _dict_batches()]
    stream = jn.data.stream(scaled, num_classes=2, preprocessing=preprocessing)
    whole = jn.train.fit(_net(), stream, run_dir=tmp_path / "whole", **_kw())
    jn.train.fit(_net(), stream, run_dir=tmp_path / "split", **_kw(epochs=1))
    resumed = jn.train.fit(_net(), stream, run_dir=tmp_path / "split", resume=True, **_kw())
    _close(whole.train_state.params, resumed.train_state.params, atol=0)

    model = jn.train.load(tmp_path / "whole").model
    raw = {"left": LEFT[:5], "right": RIGHT[:5]}
    expected = _net().apply(whole.train_state.params, {}, preprocessing(raw))[0]
    np.testing.assert_allclose(model.predict_outputs(raw), expected, atol=1e-6)
    np.testing.assert_array_equal(model.predict(raw), np.argmax(expected, -1))


def test_a_grain_pipeline_of_dict_records_trains_like_the_list():
    import grain

    records = [
        {"x": {"left": LEFT[i], "right": RIGHT[i]}, "y": LABELS[i]} for i in range(len(LABELS))
    ]
    pipeline = grain.MapDataset.source(records).batch(BATCH)
    from_grain = jn.train.fit(_net(), jn.data.stream(pipeline, num_classes=2), **_kw())
    _close(from_grain.train_state.params, _by_hand(_net(), _dict_batches()))


def _first_failure(net, batches):
    """The first step (1-based) whose loss or new parameters are not finite, by hand."""
    params = jn.train.TrainState.create(net, optax.sgd(LR), SHAPES, key=jax.random.key(0)).params

    def loss(params, x, y):
        return jn.losses.softmax_cross_entropy(net.apply(params, {}, x)[0], y)

    for step, (x, y) in enumerate(batches, 1):
        value, grads = jax.value_and_grad(loss)(params, jax.tree.map(jnp.asarray, x), y)
        params = jax.tree.map(lambda p, g: p - LR * g, params, grads)
        finite = [bool(jnp.isfinite(a).all()) for a in jax.tree.leaves(params)]
        if not (np.isfinite(value) and all(finite)):
            return step
    raise AssertionError("every step was finite")


@pytest.mark.parametrize("steps_per_call", [2, 3])
def test_a_failed_step_is_replayed_from_the_kept_chunks(steps_per_call):
    # batch 5 is huge: the update after it overflows a later step, found a chunk later
    batches = _dict_batches()
    x5, y5 = batches[5]
    batches[5] = ({"left": x5["left"] * 1e30, "right": x5["right"]}, y5)
    failed = _first_failure(_net(), batches)
    assert failed in (6, 7)
    # step 6 (batch 5) is still finite (a loss of ~1e29, parameters of ~1e28); step 7's
    # products of those parameters overflow
    assert failed == 7
    stream = jn.data.stream(batches, num_classes=2)
    with pytest.raises(
        jn.train.NonFiniteError, match=rf"^non-finite loss or parameters at step {failed};"
    ):
        streaming = jn.train.Streaming(steps_per_call=steps_per_call)
        jn.train.fit(_net(), stream, streaming=streaming, **_kw(epochs=1))


def test_the_chunk_size_counts_every_part():
    spec = jn.data.stream(_dict_batches(), num_classes=2).spec
    assert spec.x_shape == {"left": (8, 5), "right": (8, 2, 3)}
    assert spec.feature_shape == {"left": (5,), "right": (2, 3)}
    assert spec.batch_size == 8
    assert spec.x_bytes == 8 * 5 * 4 + 8 * 6 * 4


def _later(bad):
    """The error for ``bad`` as the second batch of a pass."""
    stream = jn.data.stream([_dict_batches()[0], bad], num_classes=2)
    with pytest.raises(jn.data.StreamError) as error:
        list(stream.batches("train", epoch=0))
    return str(error.value)


def test_every_malformed_batch_is_one_clear_error():
    where = "stream: train batch 1 of epoch 0: "
    first = "{'left': (8, 5), 'right': (8, 2, 3)}"
    assert _later(({"left": LEFT[:8]}, LABELS[:8])) == (
        f"{where}x has shape {{'left': (8, 5)}}, but the first training batch had {first}; "
        "every batch must have the same parts"
    )
    assert _later((LEFT[:8], LABELS[:8])) == (
        f"{where}x has shape (8, 5), but the first training batch had {first}; every batch "
        "must have the same parts"
    )
    assert _later(({"left": LEFT[:7], "right": RIGHT[:7]}, LABELS[:7])) == (
        f"{where}x has shape {{'left': (7, 5), 'right': (7, 2, 3)}} and y (7,), but the first "
        f"training batch had {first} and (8,); every training batch must have the same shapes "
        "(drop a smaller last batch: drop_remainder=True)"
    )
    nan = RIGHT[:8].copy()
    nan[3, 1, 2] = np.nan
    assert _later(({"left": LEFT[:8], "right": nan}, LABELS[:8])) == (
        f"{where}x['right'] holds NaN or Inf (first in example 3)"
    )
    ids = {"left": LEFT[:8], "ids": np.arange(8)[:, None]}
    stream = jn.data.stream([(ids, LABELS[:8]), ({**ids, "ids": ids["ids"] + 0.5}, LABELS[:8])])
    assert stream.spec.x_dtype == {"left": np.float32, "ids": np.int32}
    with pytest.raises(
        jn.data.StreamError,
        match=exactly(f"{where}x['ids'] has dtype float64, but the first batch had integers"),
    ):
        list(stream.batches("train", epoch=0))


def test_first_batch_errors_name_the_part():
    with pytest.raises(
        jn.data.StreamError,
        match=exactly(
            "stream: train batch 0: x['right'] and y must hold the same number (> 0) of "
            "examples, got 7 and 8"
        ),
    ):
        jn.data.stream([({"left": LEFT[:8], "right": RIGHT[:7]}, LABELS[:8])])
    with pytest.raises(
        jn.data.StreamError,
        match=exactly("stream: train batch 0: x['right'] must hold numbers, got dtype <U1"),
    ):
        jn.data.stream([({"left": LEFT[:8], "right": np.array(list("abcdefgh"))}, LABELS[:8])])
    with pytest.raises(
        jn.data.StreamError,
        match=exactly(
            "stream: train batch 0: x is an empty dict of arrays; give at least one part"
        ),
    ):
        jn.data.stream([({}, LABELS[:8])])


def test_a_list_of_parts_is_not_one_array():
    with pytest.raises(
        jn.data.StreamError,
        match=r"^stream: train batch 0: x is not one array \(.*\); give several inputs as a "
        r"tuple or dict of arrays$",
    ):
        jn.data.stream([([LEFT[:8], RIGHT[:8]], LABELS[:8])])


def test_a_preprocessing_that_does_not_take_the_batches_is_refused():
    with pytest.raises(
        ValueError,
        match=exactly(
            "stream: preprocessing takes features of shape (5,), but the batches' features "
            "have {'left': (5,), 'right': (2, 3)}"
        ),
    ):
        jn.data.stream(_dict_batches(), preprocessing=jn.data.Preprocessing((5,)))
    ids = jn.data.TreePreprocessing(
        {"left": jn.data.Preprocessing((5,)), "right": jn.data.Preprocessing((2, 3), "int32")}
    )
    with pytest.raises(
        ValueError,
        match=exactly(
            "stream: preprocessing gives features of dtype {'left': 'float32', 'right': "
            "'int32'}, but the batches' features are {'left': 'float32', 'right': 'float32'}"
        ),
    ):
        jn.data.stream(_dict_batches(), preprocessing=ids)


def test_a_net_that_does_not_take_the_batches_is_one_shape_error():
    with pytest.raises(
        jn.ShapeError,
        match=re.escape(
            "fit: the net does not take inputs shaped {'left': (None, 5), 'right': (None, 2, 3)}"
        ),
    ):
        jn.train.fit(jn.nn.Dense(2), jn.data.stream(_dict_batches(), num_classes=2), **_kw())
