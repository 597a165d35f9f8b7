"""``fit`` on features that are a tuple or a dict of arrays (the inputs of a net shaped like a
graph): the data's split and standardization per part, training equal to the same steps written
by hand, dict inputs equal to tuple inputs, resume, load and predict on raw inputs, the errors."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxnet as jn
from tests import references_training as by_hand

RNG = np.random.default_rng(0)
LEFT = RNG.normal(3.0, 2.0, size=(48, 5))
RIGHT = RNG.normal(-1.0, 0.5, size=(48, 2, 3))
LABELS = (LEFT[:, 0] + RIGHT[:, 0, 1] > 2.0).astype(np.int32)
BATCH, EPOCHS, LR = 8, 2, 0.1


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def _graph() -> jn.Layer:
    return jn.graph(
        {
            "a": (jn.nn.Dense(4), "left"),
            "flat": (jn.nn.Flatten, "right"),
            "b": (jn.nn.Dense(4), "flat"),
            "join": (jn.nn.FanInConcat(-1), ("a", "b")),
            "out": (jn.nn.Dense(2), "join"),
        },
        inputs=("left", "right"),
    )


def _two_inputs() -> jn.Layer:
    """A hand-written layer taking a pair ``((B, 5), (B, 2, 3))``: ``l @ wl + flat(r) @ wr``."""

    def init(key, input_shape):
        (batch, left), (_, *right) = input_shape
        k1, k2 = jax.random.split(key)
        params = {
            "wl": 0.3 * jax.random.normal(k1, (left, 2)),
            "wr": 0.3 * jax.random.normal(k2, (int(np.prod(right)), 2)),
        }
        return (batch, 2), params, {}

    def apply(params, state, x, *, key=None, train=False):
        left, right = x
        return left @ params["wl"] + right.reshape(len(right), -1) @ params["wr"], state

    return jn.Layer(init, apply, "two_inputs")


def _test_rows():
    """The rows of the test part, found from the single-array split's raw test features."""
    alone = jn.data.from_arrays(LEFT, LABELS, seed=1)
    raw = alone.x_test * alone.feature_std + alone.feature_mean
    return [int(np.argmin(np.abs(LEFT - row).sum(1))) for row in raw]


def _kw(**kwargs):
    options = {"loss": jn.losses.softmax_cross_entropy, "optimizer": optax.sgd(LR)}
    return options | {"epochs": EPOCHS, "batch_size": BATCH, "progress": False} | kwargs


TUPLE = jn.data.from_arrays((LEFT, RIGHT), LABELS, seed=1)
DICT = jn.data.from_arrays({"left": LEFT, "right": RIGHT}, LABELS, seed=1)


def _by_hand(net, data):
    """The same training with jax.grad and optax over the same batches, in fit's order (38
    training rows: 4 batches of 8 each epoch, a different 6 rows left out of each)."""
    params, run_key = by_hand.initial(net, ((None, 5), (None, 2, 3)))
    opt = optax.sgd(LR)
    step, opt_state = by_hand.make_step(net, jn.losses.softmax_cross_entropy, opt), opt.init(params)
    for epoch in range(EPOCHS):
        for x, y in by_hand.shuffled_batches(run_key, epoch, data.x_train, data.y_train, BATCH):
            params, opt_state, _ = step(params, opt_state, x, y)
    return params


def _close(a, b, **tol):
    for p, q in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(p), np.asarray(q), **(tol or {"atol": 1e-6}))


def test_the_split_and_standardization_are_per_part():
    # the split depends on y and the seed only, so each part equals that part given alone
    for part, raw in zip(TUPLE.x_train, (LEFT, RIGHT.reshape(48, 6)), strict=True):
        alone = jn.data.from_arrays(raw, LABELS, seed=1)
        np.testing.assert_array_equal(part.reshape(len(part), -1), alone.x_train)
        np.testing.assert_array_equal(TUPLE.y_train, alone.y_train)
    rows = np.flatnonzero(~np.isin(LEFT[:, 1], LEFT[:, 1][_test_rows()]))
    np.testing.assert_allclose(TUPLE.feature_mean[1], RIGHT[rows].mean(0), rtol=1e-5)
    np.testing.assert_allclose(TUPLE.feature_std[1], RIGHT[rows].std(0), rtol=1e-5)
    assert TUPLE.feature_shape == ((5,), (2, 3))
    assert DICT.feature_shape == {"left": (5,), "right": (2, 3)}
    assert TUPLE.num_features == 11 and TUPLE.num_val == 0
    assert TUPLE.x_val[1].shape == (0, 2, 3)
    assert repr(DICT).endswith(
        "x_test={left: float32(10, 5), right: float32(10, 2, 3)}, y_test=int32(10,))"
    )


def test_transform_and_preprocessing_on_trees():
    raw = {"left": LEFT[:3], "right": RIGHT[:3]}
    scaled = DICT.transform(raw)
    np.testing.assert_allclose(
        scaled["right"],
        (RIGHT[:3] - DICT.feature_mean["right"]) / DICT.feature_std["right"],
        atol=1e-6,
    )
    again = jn.data.Preprocessing.from_json(DICT.preprocessing.to_json())
    assert again.feature_shape == DICT.feature_shape
    np.testing.assert_array_equal(again(raw)["left"], scaled["left"])
    with pytest.raises(
        ValueError,
        match=exactly(
            "x: expected inputs shaped {'left': (None, 5), 'right': (None, 2, 3)}, got (array, array)"
            "; this model takes its inputs by name: pass a dict {'left': ..., 'right': ...}"
        ),
    ):
        DICT.preprocessing.check((LEFT, RIGHT))
    with pytest.raises(
        ValueError, match=re.escape("x['right']: expected inputs of shape (n, 2, 3)")
    ):
        DICT.preprocessing.check({"left": LEFT, "right": LEFT})


@pytest.mark.parametrize("make", [_graph, _two_inputs], ids=["graph", "layer"])
def test_fit_equals_the_same_training_by_hand(make):
    result = jn.train.fit(make(), TUPLE, **_kw())
    _close(result.train_state.params, _by_hand(make(), TUPLE))


def test_stepwise_epochs_a_mesh_and_dict_inputs_equal_tuple_inputs():
    fused = jn.train.fit(_graph(), TUPLE, **_kw())
    stepwise = jn.train.fit(_graph(), TUPLE, fused=False, **_kw())
    named = jn.train.fit(_graph(), DICT, **_kw())
    on_mesh = jn.train.fit(_graph(), DICT, mesh=jn.distributed.make_mesh(1), **_kw())
    _close(stepwise.train_state.params, fused.train_state.params)
    _close(on_mesh.train_state.params, fused.train_state.params)
    _close(named.train_state.params, fused.train_state.params)
    assert named.history[-1]["test_loss"] == pytest.approx(fused.history[-1]["test_loss"], 1e-6)


def test_evaluate_and_lr_find_take_trees():
    result = jn.train.fit(_graph(), DICT, **_kw())
    eval_step = jn.train.make_eval_step(_graph(), jn.losses.softmax_cross_entropy)
    metrics = jn.train.evaluate(
        eval_step, result.train_state, DICT.x_test, DICT.y_test, batch_size=3
    )
    assert metrics["loss"] == pytest.approx(result.history[-1]["test_loss"], rel=1e-5)
    found = jn.train.lr_find(
        _graph(), DICT, loss=jn.losses.softmax_cross_entropy, steps=8, batch_size=BATCH
    )
    assert len(found.losses) == 8 and np.isfinite(found.losses).all()


def test_resume_is_bit_for_bit_and_load_predicts_on_raw_inputs(tmp_path):
    straight = jn.train.fit(_graph(), DICT, run_dir=tmp_path / "straight", **_kw(epochs=3))
    jn.train.fit(_graph(), DICT, run_dir=tmp_path / "cut", **_kw(epochs=1))
    resumed = jn.train.fit(_graph(), DICT, run_dir=tmp_path / "cut", resume=True, **_kw(epochs=3))
    for p, q in zip(
        jax.tree.leaves(straight.train_state.params),
        jax.tree.leaves(resumed.train_state.params),
        strict=True,
    ):
        np.testing.assert_array_equal(p, q)
    model = jn.train.load(tmp_path / "cut").model
    raw = {"left": LEFT[:5], "right": RIGHT[:5]}
    by_hand = {key: (raw[key] - DICT.feature_mean[key]) / DICT.feature_std[key] for key in raw}
    logits, _ = _graph().apply(resumed.train_state.params, {}, by_hand)
    np.testing.assert_allclose(model.predict_outputs(raw), logits, atol=1e-5)
    np.testing.assert_array_equal(model.predict(raw), np.argmax(logits, -1))
    forward = jax.export.deserialize(jn.export(model, tmp_path / "export").forward.read_bytes())
    np.testing.assert_allclose(forward.call(raw), model.predict_outputs(raw), atol=1e-6)


def test_data_errors():
    with pytest.raises(
        ValueError,
        match=exactly(
            "x: every part must have the same number of rows, got x['left'] with 48 and "
            "x['right'] with 47"
        ),
    ):
        jn.data.from_arrays({"left": LEFT, "right": RIGHT[:47]}, LABELS)
    with pytest.raises(
        ValueError, match=exactly("x is an empty tuple of arrays; give at least one part")
    ):
        jn.data.from_arrays((), LABELS)
    with pytest.raises(
        ValueError, match=exactly("x is an empty dict of arrays; give at least one part")
    ):
        jn.data.from_arrays({}, LABELS)
    with pytest.raises(
        TypeError, match=exactly("x: the keys of a dict of arrays must be strings, got 0")
    ):
        jn.data.from_arrays({0: LEFT}, LABELS)
    with pytest.raises(
        ValueError,
        match=exactly("x and y must have the same number of samples, got len(x)=48 and len(y)=47"),
    ):
        jn.data.from_arrays((LEFT, RIGHT), LABELS[:47])


def test_a_net_that_does_not_take_the_inputs_is_one_shape_error():
    with pytest.raises(
        jn.ShapeError,
        match=re.escape(
            "fit: the net does not take inputs shaped {'left': (None, 5), 'right': (None, 2, 3)}: "
        ),
    ):
        jn.train.fit(jn.nn.Dense(2), DICT, **_kw())


def test_accumulation_on_tree_inputs_equals_the_whole_batch():
    """Two micro-batches of a dict batch: one update equal to the step on the whole batch."""
    whole = jn.train.fit(_graph(), DICT, **_kw())
    split = jn.train.fit(_graph(), DICT, update=jn.train.Update(accumulate=2), **_kw())
    assert whole.history[-1]["step"] == split.history[-1]["step"]
    pairs = zip(
        jax.tree.leaves(whole.train_state.params),
        jax.tree.leaves(split.train_state.params),
        strict=True,
    )
    for a, b in pairs:
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_accumulated_step_splits_every_part_by_the_same_rows():
    """make_train_step(accumulate=4) on a tuple batch against a hand-written mean of the four
    micro-batches' gradients (micro-batch j is rows j, j + 4, ...)."""
    net = _two_inputs()
    opt = optax.sgd(LR)
    ts = jn.train.TrainState.create(net, opt, ((None, 5), (None, 2, 3)), key=jax.random.key(0))
    x = (jnp.asarray(LEFT[:16], jnp.float32), jnp.asarray(RIGHT[:16], jnp.float32))
    y = jnp.asarray(LABELS[:16])
    step = jax.jit(
        jn.train.make_train_step(net, jn.losses.softmax_cross_entropy, opt, accumulate=4)
    )
    new, report = step(ts, (x, y))

    def loss(params, rows):
        part = (x[0][rows], x[1][rows])
        out, _ = net.apply(params, {}, part)
        return jn.losses.softmax_cross_entropy(out, y[rows])

    micro = [np.arange(j, 16, 4) for j in range(4)]
    grads = [jax.grad(loss)(ts.params, rows) for rows in micro]
    mean = jax.tree.map(lambda *g: sum(g) / 4, *grads)
    expected = jax.tree.map(lambda p, g: p - LR * g, ts.params, mean)
    assert int(new.step) == 1
    np.testing.assert_allclose(
        report["loss"], np.mean([loss(ts.params, rows) for rows in micro]), rtol=1e-6
    )
    for a, b in zip(jax.tree.leaves(new.params), jax.tree.leaves(expected), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_dict_keys_in_any_order(tmp_path):
    """Keys not in sorted order (``jax.jit`` sorts them) and inputs given in another order."""
    net = jn.graph(
        {
            "z": (jn.nn.Dense(3), "zeta"),
            "a": (jn.nn.Dense(3), "alpha"),
            "sum": (jn.nn.FanInSum, ("z", "a")),
            "out": (jn.nn.Dense(2), "sum"),
        },
        inputs=("zeta", "alpha"),
    )
    data = jn.data.from_arrays({"zeta": LEFT[:, :3], "alpha": RIGHT[:, 0]}, LABELS, seed=1)
    result = jn.train.fit(net, data, run_dir=tmp_path / "run", **_kw())
    model = jn.train.load(tmp_path / "run").model
    raw = {"zeta": LEFT[:4, :3], "alpha": RIGHT[:4, 0]}
    scaled = {k: (raw[k] - data.feature_mean[k]) / data.feature_std[k] for k in raw}
    logits, _ = net.apply(result.train_state.params, {}, scaled)
    np.testing.assert_allclose(model.predict_outputs(raw), logits, atol=1e-5)
    np.testing.assert_allclose(
        model.predict_outputs(dict(reversed(raw.items()))), logits, atol=1e-5
    )


def test_validation_parts_are_matched_by_key():
    """x_val's dict may list the parts in another order; a part of the wrong shape is named."""
    x = {"left": LEFT[:40], "right": RIGHT[:40]}
    val = {"right": RIGHT[40:], "left": LEFT[40:]}
    data = jn.data.from_arrays(x, LABELS[:40], validation=(val, LABELS[40:]), seed=1)
    expected = (LEFT[40:] - data.feature_mean["left"]) / data.feature_std["left"]
    np.testing.assert_allclose(data.x_val["left"], expected, atol=1e-5)
    assert list(data.x_val) == ["left", "right"]
    swapped = {"right": LEFT[40:], "left": RIGHT[40:]}
    with pytest.raises(
        ValueError,
        match=exactly("validation: x_val['left'] has samples of shape (2, 3), but x has (5,)"),
    ):
        jn.data.from_arrays(x, LABELS[:40], validation=(swapped, LABELS[40:]))


def test_a_failed_step_on_tree_inputs_is_replayed_and_named():
    """The in-memory replay draws the failed step's batch of every part again (it used to
    index the dict of parts by the step, a KeyError). With η = 1e38 step 1's update is finite
    but huge, and step 2's outputs overflow."""
    huge = jn.data.from_arrays({"left": LEFT, "right": RIGHT}, LABELS, seed=1)
    with pytest.raises(
        jn.train.NonFiniteError, match=r"^non-finite loss or parameters at step 2; "
    ) as caught:
        jn.train.fit(_graph(), huge, **_kw(optimizer=optax.sgd(1e38)))
    assert "graph/" in str(caught.value)
