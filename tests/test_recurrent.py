"""Recurrent cells, the RNN layer and Bidirectional: the layer contract, masks, PyTorch's layout,
errors."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.nn.recurrent import GRU, LSTM, RNN, Bidirectional, Cell, SimpleRNN, scan_cell
from tests import contract
from tests import references_recurrent as ref
from tests.contract import Case

CELLS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}
SHAPE = (2, 4, 3)  # (batch, time, features): tiny, since finite differences go through lax.scan


def exact(message: str) -> str:
    """A pattern that matches ``message`` and nothing more."""
    return f"(?m)^{re.escape(message)}$"  # (?m): JAX may append a note after a newline


def _cases() -> list[Case]:
    cases = []
    for kind, make in CELLS.items():
        cases += [
            Case(kind, RNN(make(4)), SHAPE, ref.rnn_reference(kind)),
            Case(
                f"{kind}_reverse",
                RNN(make(4), reverse=True),
                SHAPE,
                ref.rnn_reference(kind, reverse=True),
            ),
            Case(
                f"{kind}_last",
                RNN(make(4), return_sequences=False),
                SHAPE,
                ref.rnn_reference(kind, return_sequences=False),
            ),
        ]
    return cases


BIDIRECTIONAL_CASES = [
    Case(
        "bidirectional_lstm",
        Bidirectional(RNN(LSTM(3))),
        SHAPE,
        ref.bidirectional_reference("lstm"),
    ),
]
# Other settings, against the NumPy reference only: their gradients, jit and vmap go through
# the same flips and RNNs as the case above.
BIDIRECTIONAL_REFERENCE_CASES = [
    Case(
        "bidirectional_gru_last_sum",
        Bidirectional(RNN(GRU(3), return_sequences=False), combine="sum"),
        SHAPE,
        ref.bidirectional_reference("gru", combine="sum", return_sequences=False),
    ),
    Case(
        "bidirectional_two_cells",
        Bidirectional(RNN(SimpleRNN(2)), RNN(GRU(3))),
        SHAPE,
        ref.bidirectional_reference("simple_rnn", "gru"),
    ),
]
CASES = _cases() + BIDIRECTIONAL_CASES
# Finite differences of second order through lax.scan take XLA 10-20 s to compile per case on
# CPU, whatever the sizes, so they run for each cell once. The reverse and last-output variants
# differ only in lax.scan's `reverse` flag and an index, and pass every other check (grad
# included) plus the NumPy reference. Bidirectional adds flips and a concatenation (or a sum)
# around two RNNs whose gradients the cells' cases check; it passes every other check.
FINITE_DIFFERENCE_CASES = ("simple_rnn", "lstm", "gru")
CONTRACT = [
    pytest.param(case, check, id=f"{case.id}-{check_id}")
    for case in CASES
    for check, check_id in zip(contract.CHECKS, contract.CHECK_IDS, strict=True)
    if check is not contract.check_finite_differences or case.id in FINITE_DIFFERENCE_CASES
]


@pytest.mark.parametrize(("case", "check"), CONTRACT)
def test_contract(case, check, key):
    check(case, key)


@pytest.mark.parametrize("check", contract.REFERENCE_CHECKS, ids=contract.REFERENCE_CHECK_IDS)
@pytest.mark.parametrize(
    "case", BIDIRECTIONAL_REFERENCE_CASES, ids=[c.id for c in BIDIRECTIONAL_REFERENCE_CASES]
)
def test_more_bidirectional_settings_match_the_reference(case, check, key):
    check(case, key)


# ----------------------------------------------------------------------------- masks

MASKS = {  # one row per example: (batch=8, time=4), True = a real step
    "full": [True, True, True, True],
    "right_padded": [True, True, False, False],
    "left_padded": [False, True, True, True],
    "holes": [True, False, True, False],
    "inner": [False, True, True, False],
    "empty": [False, False, False, False],
    "first_only": [True, False, False, False],
    "last_only": [False, False, False, True],
}
MASK = np.array(list(MASKS.values()))  # (8, 4)


@pytest.mark.parametrize("kind", list(CELLS))
def test_masked_sequences_match_reference(kind, key):
    x = jax.random.normal(jax.random.key(1), (*MASK.shape, 3))  # (8, 4, 3)
    for reverse in (False, True):
        for return_sequences in (True, False):
            layer = RNN(CELLS[kind](3), reverse=reverse, return_sequences=return_sequences)
            _, params, state = layer.init(key, x.shape)
            y, _ = layer.apply(params, state, (x, jnp.asarray(MASK)))
            expected, _ = ref.run(
                kind, params, x, mask=MASK, reverse=reverse, return_sequences=return_sequences
            )
            np.testing.assert_allclose(
                y, expected, rtol=2e-5, atol=2e-6, err_msg=f"{reverse=} {return_sequences=}"
            )


@pytest.mark.parametrize("kind", list(CELLS))
def test_scan_cell_final_carry_is_the_carry_after_the_last_real_step(kind, key):
    cell = CELLS[kind](3)
    params = cell.init(key, 3)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    mask = MASK[3:5]  # holes, inner
    ys, carry = scan_cell(cell, params, x, mask=jnp.asarray(mask))
    expected_ys, finals = ref.run(kind, params, x, mask=mask)
    np.testing.assert_allclose(ys, expected_ys, rtol=2e-5, atol=2e-6)
    for name in ref.CARRIES[kind]:
        np.testing.assert_allclose(
            carry[name], np.stack([f[name] for f in finals]), rtol=2e-5, atol=2e-6
        )


def test_padded_steps_do_not_change_outputs_or_receive_gradient(key):
    layer = RNN(LSTM(3), return_sequences=False)
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    mask = jnp.asarray(MASK[:2])  # full, right padded
    noisy = x.at[1, 2:].set(100.0)  # change only the padded steps of example 1
    np.testing.assert_array_equal(
        layer.apply(params, state, (x, mask))[0], layer.apply(params, state, (noisy, mask))[0]
    )
    grad = jax.grad(lambda x: jnp.sum(layer.apply(params, state, (x, mask))[0]))(x)
    np.testing.assert_array_equal(grad[1, 2:], 0.0)
    assert np.all(np.abs(grad[1, :2]) > 0)


def test_all_true_mask_equals_no_mask(key):
    layer = RNN(GRU(3), reverse=True)
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    with_mask, _ = layer.apply(params, state, (x, jnp.ones(SHAPE[:2], bool)))
    np.testing.assert_allclose(with_mask, layer.apply(params, state, x)[0], rtol=1e-6, atol=1e-7)


def test_mask_may_be_a_list_pair_and_a_numpy_mask(key):
    layer = RNN(SimpleRNN(2))
    _, params, state = layer.init(key, SHAPE)
    x = jnp.ones(SHAPE)
    y, _ = layer.apply(params, state, [x, MASK[2:4]])  # left padded, holes
    assert y.shape == (2, 4, 2)
    np.testing.assert_array_equal(y[0, 0], 0.0)
    np.testing.assert_array_equal(y[1, 1], 0.0)
    assert np.all(y[1, 2] != 0.0)


# ----------------------------------------------------------------------------- scan_cell


def test_scan_cell_takes_an_initial_carry_and_any_batch_axes(key):
    cell = LSTM(3)
    params = cell.init(key, 2)
    x = jax.random.normal(jax.random.key(1), (5, 2))  # (T, F): no batch axis
    start = {"h": jnp.full((3,), 0.5), "c": jnp.full((3,), -0.5)}
    ys, carry = scan_cell(cell, params, x, initial_carry=start)
    assert ys.shape == (5, 3) and carry["c"].shape == (3,)
    expected = []
    c = {name: np.asarray(v, np.float64) for name, v in start.items()}
    for t in range(5):
        c, y = ref.lstm_step(params, c, np.asarray(x[t], np.float64))
        expected.append(y)
    np.testing.assert_allclose(ys, np.stack(expected), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(carry["h"], ys[-1])
    # Two batch axes: (2, 3, T, F) gives (2, 3, T, H), the same as one example at a time.
    xs = jax.random.normal(jax.random.key(2), (2, 3, 5, 2))
    batched, _ = scan_cell(cell, params, xs)
    np.testing.assert_allclose(
        batched[1, 2], scan_cell(cell, params, xs[1, 2])[0], rtol=1e-6, atol=1e-7
    )


def test_scan_cell_runs_in_float64_when_inputs_are_float64(key):
    with jax.enable_x64(True):
        cell = GRU(2)
        params = jax.tree.map(lambda a: a.astype(jnp.float64), cell.init(key, 3))
        ys, carry = scan_cell(cell, params, jnp.ones((2, 4, 3), jnp.float64))
        assert ys.dtype == jnp.float64 and carry["h"].dtype == jnp.float64


def test_a_cell_of_your_own_is_three_functions(key):
    """A leaky integrator h' = 0.5·h + x·w, written as a Cell without in_features."""
    cell = Cell(
        init=lambda key, n: {"w": jnp.ones((n, 2))},
        initial_carry=lambda batch_shape, dtype=jnp.float32: jnp.zeros((*batch_shape, 2), dtype),
        step=lambda p, h, x_t: (0.5 * h + x_t @ p["w"],) * 2,
        name="leaky",
        features=2,
    )
    net = jn.serial(RNN(cell, return_sequences=False))
    out_shape, params, state = net.init(key, (2, 3, 1))
    assert out_shape == (2, 2) and list(params) == ["leaky_0"]
    y, _ = net.apply(params, state, jnp.ones((2, 3, 1)))
    np.testing.assert_allclose(y, 1.75)  # 1 + 0.5 + 0.25


# ----------------------------------------------------------------------------- initialization


def test_lstm_forget_gate_bias_starts_at_one_or_as_given(key):
    b = LSTM(3).init(key, 2)["b"].reshape(4, 3)  # rows: gates i, f, g, o
    np.testing.assert_array_equal(b, [[0] * 3, [1] * 3, [0] * 3, [0] * 3])
    np.testing.assert_array_equal(LSTM(3, forget_bias=0).init(key, 2)["b"], 0.0)


@pytest.mark.parametrize("kind", list(CELLS))
def test_recurrent_blocks_are_orthogonal_per_gate(kind, key):
    params = CELLS[kind](4).init(key, 3)
    w_h = np.asarray(params["w_h"], np.float64)
    for g in range(w_h.shape[1] // 4):
        block = w_h[:, 4 * g : 4 * (g + 1)]
        np.testing.assert_allclose(block.T @ block, np.eye(4), atol=1e-5)
    assert params["w_i"].dtype == jnp.float32


def test_custom_initializers_are_used(key):
    cell = GRU(2, w_i_init=jax.nn.initializers.ones, w_h_init=jax.nn.initializers.zeros)
    params = cell.init(key, 3)
    np.testing.assert_array_equal(params["w_i"], 1.0)
    np.testing.assert_array_equal(params["w_h"], 0.0)


def test_simple_rnn_activation(key):
    layer = RNN(SimpleRNN(3, activation=jax.nn.relu))
    _, params, state = layer.init(key, SHAPE)
    x = jax.random.normal(jax.random.key(1), SHAPE)
    y, _ = layer.apply(params, state, x)
    expected = np.zeros((2, 4, 3))
    for b in range(2):
        carry = {"h": np.zeros(3)}
        for t in range(4):
            carry, expected[b, t] = ref.simple_rnn_step(
                params,
                carry,
                np.asarray(x[b, t], np.float64),
                activation=lambda a: np.maximum(a, 0),
            )
    np.testing.assert_allclose(y, expected, rtol=2e-5, atol=2e-6)


# ----------------------------------------------------------------------------- PyTorch's layout


def _torch_weights(rng, gates, in_features, hidden):
    """Random weights in PyTorch's layout: weight_ih (gates·H, in), weight_hh (gates·H, H)."""
    scale = 1 / np.sqrt(hidden)  # PyTorch's init: U(-1/√H, 1/√H)
    return (
        rng.uniform(-scale, scale, (gates * hidden, in_features)),
        rng.uniform(-scale, scale, (gates * hidden, hidden)),
        rng.uniform(-scale, scale, gates * hidden),
        rng.uniform(-scale, scale, gates * hidden),
    )


@pytest.mark.parametrize(
    ("make", "gates", "torch_reference", "convert"),
    [
        (
            SimpleRNN,
            1,
            ref.torch_rnn,
            lambda wi, wh, bi, bh: {"w_i": wi.T, "w_h": wh.T, "b": bi + bh},
        ),
        (LSTM, 4, ref.torch_lstm, lambda wi, wh, bi, bh: {"w_i": wi.T, "w_h": wh.T, "b": bi + bh}),
        (
            GRU,
            3,
            ref.torch_gru,
            lambda wi, wh, bi, bh: {"w_i": wi.T, "w_h": wh.T, "b_i": bi, "b_h": bh},
        ),
    ],
    ids=["simple_rnn", "lstm", "gru"],
)
def test_weights_in_pytorch_layout_load_with_the_documented_transpose(
    make, gates, torch_reference, convert, key
):
    rng = np.random.default_rng(0)
    torch_weights = _torch_weights(rng, gates, 3, 4)
    x = rng.normal(size=(2, 5, 3))
    layer = RNN(make(4))
    _, params, state = layer.init(key, (2, 5, 3))
    loaded = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), convert(*torch_weights))
    assert jax.tree.map(jnp.shape, loaded) == jax.tree.map(jnp.shape, params)
    y, _ = layer.apply(loaded, state, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(y, torch_reference(*torch_weights, x), rtol=2e-5, atol=2e-6)


# ----------------------------------------------------------------------------- in networks


def test_rnn_is_a_layer_of_the_cells_kind_in_serial(key):
    net = jn.serial(RNN(LSTM(4)), RNN(GRU(3), return_sequences=False), jn.nn.Dense(2))
    out_shape, params, state = net.init(key, (None, 5, 3))
    assert out_shape == (None, 2)
    assert jax.tree.map(jnp.shape, params) == {
        "lstm_0": {"w_i": (3, 16), "w_h": (4, 16), "b": (16,)},
        "gru_0": {"w_i": (4, 9), "w_h": (3, 9), "b_i": (9,), "b_h": (9,)},
        "dense_0": {"w": (3, 2), "b": (2,)},
    }
    assert state == {}
    assert net.apply(params, state, jnp.ones((2, 5, 3)))[0].shape == (2, 2)
    assert "serial/lstm_0" in jn.summary(net, (1, 5, 3), show=False)


def test_unknown_time_length_is_kept(key):
    assert RNN(GRU(3)).init(key, (2, None, 5))[0] == (2, None, 3)
    assert RNN(GRU(3), return_sequences=False).init(key, (2, -1, 5))[0] == (2, 3)


def test_bidirectional_with_parallel(key):
    net = jn.parallel(RNN(GRU(3)), RNN(GRU(3), reverse=True))
    out_shape, params, state = net.init(key, SHAPE)
    assert out_shape == (2, 4, 6) and sorted(params) == ["gru_0", "gru_1"]
    x = jax.random.normal(jax.random.key(1), SHAPE)
    y, _ = net.apply(params, state, x)
    np.testing.assert_allclose(
        y[..., 3:], ref.run("gru", params["gru_1"], x, reverse=True)[0], rtol=2e-5, atol=2e-6
    )


# ----------------------------------------------------------------------------- Bidirectional


def test_bidirectional_is_the_two_layers_run_by_hand(key):
    """The forward pass, beside the backward layer's pass over the reversed sequence, its
    outputs reversed back; the same as the parallel idiom with reverse=True."""
    rnn = RNN(LSTM(3))
    layer = Bidirectional(rnn)
    out_shape, params, state = layer.init(key, SHAPE)
    assert out_shape == (2, 4, 6) and state == {}
    assert sorted(params) == ["backward", "forward"]
    assert jax.tree.map(jnp.shape, params["backward"]) == jax.tree.map(jnp.shape, params["forward"])
    assert not np.allclose(params["forward"]["w_i"], params["backward"]["w_i"])  # two inits
    x = jax.random.normal(jax.random.key(1), SHAPE)
    run = jax.jit(lambda net, params, x: net.apply(params, {}, x)[0], static_argnums=0)
    forward = run(rnn, params["forward"], x)
    backward = run(rnn, params["backward"], x[:, ::-1])[:, ::-1]
    y = run(layer, params, x)
    np.testing.assert_allclose(y, jnp.concatenate([forward, backward], -1), rtol=1e-6, atol=1e-7)
    both_ways = jn.parallel(rnn, RNN(LSTM(3), reverse=True))
    renamed = {"lstm_0": params["forward"], "lstm_1": params["backward"]}
    np.testing.assert_allclose(run(both_ways, renamed, x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_bidirectional_masks_both_directions(return_sequences, key):
    """With a mask, the backward direction is RNN(reverse=True) with that mask: padded steps
    are skipped both ways and output zeros; a right-padded sequence is read back from its last
    real step."""
    layer = Bidirectional(RNN(GRU(3), return_sequences=return_sequences))
    x = jax.random.normal(jax.random.key(1), (*MASK.shape, 3))  # (8, 4, 3)
    _, params, state = layer.init(key, x.shape)
    y, _ = jax.jit(layer.apply)(params, state, (x, jnp.asarray(MASK)))
    options = {"mask": MASK, "return_sequences": return_sequences}
    forward, _ = ref.run("gru", params["forward"], x, **options)
    backward, _ = ref.run("gru", params["backward"], x, reverse=True, **options)
    np.testing.assert_allclose(y, np.concatenate([forward, backward], -1), rtol=2e-5, atol=2e-6)


def test_bidirectional_in_a_network_names_its_directions(key):
    net = jn.serial(Bidirectional(RNN(SimpleRNN(2)), RNN(GRU(3))), jn.nn.Dense(1))
    out_shape, params, _ = net.init(key, (None, None, 3))
    assert out_shape == (None, None, 1)
    assert jax.tree.map(jnp.shape, params["bidirectional_0"]) == {
        "forward": {"w_i": (3, 2), "w_h": (2, 2), "b": (2,)},
        "backward": {"w_i": (3, 9), "w_h": (3, 9), "b_i": (9,), "b_h": (9,)},
    }
    table = jn.summary(net, (1, 4, 3), show=False)
    assert "serial/bidirectional_0/forward" in table and "serial/bidirectional_0/backward" in table
    x = jnp.ones((1, 4, 3))
    found = jn.intermediates(net, params, {}, x)
    assert list(found)[:3] == [
        "serial/bidirectional_0/forward",
        "serial/bidirectional_0/backward",
        "serial/bidirectional_0",
    ]
    np.testing.assert_array_equal(
        found["serial/bidirectional_0"][..., 2:], found["serial/bidirectional_0/backward"][:, ::-1]
    )


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: LSTM(0), ValueError, "lstm: features must be a positive int, got 0"),
        (lambda: GRU(2.5), TypeError, "gru: features must be a positive int, got float 2.5"),
        (
            lambda: SimpleRNN(True),
            TypeError,
            "simple_rnn: features must be a positive int, got bool True",
        ),
        (
            lambda: SimpleRNN(3, activation="tanh"),
            TypeError,
            "simple_rnn: activation must be callable, got str",
        ),
        (
            lambda: SimpleRNN(3, w_i_init=0.1),
            TypeError,
            "simple_rnn: w_i_init must be callable, got float",
        ),
        (
            lambda: SimpleRNN(3, w_h_init=None),
            TypeError,
            "simple_rnn: w_h_init must be callable, got NoneType",
        ),
        (lambda: LSTM(3, w_i_init=1), TypeError, "lstm: w_i_init must be callable, got int"),
        (lambda: LSTM(3, w_h_init=1), TypeError, "lstm: w_h_init must be callable, got int"),
        (lambda: GRU(3, w_i_init=1), TypeError, "gru: w_i_init must be callable, got int"),
        (lambda: GRU(3, w_h_init=1), TypeError, "gru: w_h_init must be callable, got int"),
        (
            lambda: LSTM(3, forget_bias="1"),
            TypeError,
            "lstm: forget_bias must be a number, got str '1'",
        ),
        (
            lambda: LSTM(3, forget_bias=True),
            TypeError,
            "lstm: forget_bias must be a number, got bool True",
        ),
        (
            lambda: RNN(LSTM),
            TypeError,
            "rnn: cell must be a jaxnet Cell such as LSTM(8), got function (did you pass a constructor without calling it?)",
        ),
        (
            lambda: RNN(jn.nn.Dense(3)),
            TypeError,
            "rnn: cell must be a jaxnet Cell such as LSTM(8), got Layer",
        ),
        (
            lambda: RNN(LSTM(3), return_sequences=0),
            TypeError,
            "rnn: return_sequences must be a bool, got int 0",
        ),
        (
            lambda: RNN(LSTM(3), reverse="yes"),
            TypeError,
            "rnn: reverse must be a bool, got str 'yes'",
        ),
    ],
)
def test_constructor_errors(build, error, message):
    with pytest.raises(error, match=exact(message)):
        build()


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (
            lambda: Bidirectional(LSTM(3)),
            TypeError,
            "bidirectional: forward must be a jaxnet Layer such as RNN(LSTM(8)), got Cell 'lstm'; wrap it: RNN(cell)",
        ),
        (
            lambda: Bidirectional(RNN(LSTM(3)), GRU(3)),
            TypeError,
            "bidirectional: backward must be a jaxnet Layer such as RNN(LSTM(8)), got Cell 'gru'; wrap it: RNN(cell)",
        ),
        (
            lambda: Bidirectional(RNN),
            TypeError,
            "bidirectional: forward must be a jaxnet Layer such as RNN(LSTM(8)), got function (did you pass a constructor without calling it?)",
        ),
        (
            lambda: Bidirectional(RNN(GRU(3)), 3),
            TypeError,
            "bidirectional: backward must be a jaxnet Layer such as RNN(LSTM(8)), got int",
        ),
        (
            lambda: Bidirectional(RNN(GRU(3)), combine="mean"),
            ValueError,
            "bidirectional: combine must be one of ('concat', 'sum'), got 'mean'",
        ),
        (
            lambda: Bidirectional(RNN(GRU(3)), RNN(GRU(3), reverse=True)),
            ValueError,
            "bidirectional: backward is an RNN with reverse=True; pass it without reverse, since Bidirectional reverses the sequence for the backward layer itself",
        ),
        (
            lambda: Bidirectional(RNN(GRU(3), reverse=True)),
            ValueError,
            "bidirectional: forward is an RNN with reverse=True; pass it without reverse, since Bidirectional reverses the sequence for the backward layer itself",
        ),
    ],
)
def test_bidirectional_constructor_errors(build, error, message):
    with pytest.raises(error, match=exact(message)):
        build()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 3), "lstm: expected input (batch, time, features) with known features, got (2, 3)"),
        (
            (2, 3, 4, 5),
            "lstm: expected input (batch, time, features) with known features, got (2, 3, 4, 5)",
        ),
        (
            (2, 3, None),
            "lstm: expected input (batch, time, features) with known features, got (2, 3, None)",
        ),
    ],
)
def test_init_rejects_inputs_that_are_not_sequences(shape, message, key):
    with pytest.raises(jn.ShapeError, match=exact(message)):
        RNN(LSTM(4)).init(key, shape)


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        (
            Bidirectional(RNN(GRU(2))),
            (2, 3),
            "bidirectional: expected input (batch, time, features), got (2, 3)",
        ),
        (
            Bidirectional(RNN(GRU(2)), RNN(GRU(2), return_sequences=False)),
            (2, 5, 3),
            "bidirectional: combine='concat' needs all but the last axis equal; the forward layer gives (2, 5, 2), the backward layer (2, 2)",
        ),
        (
            Bidirectional(RNN(GRU(2)), RNN(GRU(3)), combine="sum"),
            (2, 5, 3),
            "bidirectional: combine='sum' needs equal shapes; the forward layer gives (2, 5, 2), the backward layer (2, 5, 3)",
        ),
        (
            Bidirectional(jn.nn.Reshape((5, 3, 1))),
            (2, 5, 3),
            "bidirectional: the forward layer must map (batch, time, features) to (batch, time, H) or (batch, H), but maps (2, 5, 3) to (2, 5, 3, 1)",
        ),
        (
            Bidirectional(RNN(GRU(2)), jn.nn.Reshape((3, 5))),
            (2, 5, 3),
            "bidirectional: the backward layer must map (batch, time, features) to (batch, time, H) or (batch, H), but maps (2, 5, 3) to (2, 3, 5)",
        ),
    ],
)
def test_bidirectional_init_rejects_shapes_it_cannot_run(layer, shape, message, key):
    with pytest.raises(jn.ShapeError, match=exact(message)):
        layer.init(key, shape)


def test_bidirectional_errors_carry_the_direction_in_the_path(key):
    net = jn.serial(Bidirectional(RNN(LSTM(2))))
    with pytest.raises(
        jn.ShapeError,
        match=exact(
            "serial/bidirectional_0/forward: expected input (batch, time, features) with known features, got (2, 5, None)"
        ),
    ):
        net.init(key, (2, 5, None))
    _, params, state = net.init(key, (2, 5, 3))
    with pytest.raises(
        jn.ShapeError,
        match=exact(
            "serial/bidirectional_0/forward: expected input (batch, time, 3), got (2, 5, 4)"
        ),
    ):
        jax.jit(net.apply)(params, state, jnp.ones((2, 5, 4)))
    with pytest.raises(
        jn.ShapeError,
        match=exact("serial/bidirectional_0: expected input (batch, time, features), got (2, 3)"),
    ):
        net.apply(params, state, jnp.ones((2, 3)))
    with pytest.raises(
        jn.ShapeError,
        match=exact(
            "serial/bidirectional_0: expected mask (2, 5) (the input's batch and time axes), got (2, 4)"
        ),
    ):
        net.apply(params, state, (jnp.ones((2, 5, 3)), jnp.ones((2, 4), bool)))
    with pytest.raises(
        TypeError,
        match=exact("bidirectional: mask must be a bool array (True = real step), got float32"),
    ):
        net.apply(params, state, (jnp.ones((2, 5, 3)), jnp.ones((2, 5))))


def test_init_error_carries_the_path(key):
    with pytest.raises(
        jn.ShapeError,
        match=exact(
            "serial/gru_0: expected input (batch, time, features) with known features, got (8, 3)"
        ),
    ):
        jn.serial(jn.nn.Dense(3), RNN(GRU(2))).init(key, (8, 3))


def _layer_and_params(key, layer=None):
    layer = layer or RNN(LSTM(4))
    _, params, state = layer.init(key, (2, 5, 3))
    return layer, params, state


@pytest.mark.parametrize(
    ("x_shape", "message"),
    [
        ((2, 3), "lstm: expected input (batch, time, 3), got (2, 3)"),
        ((2, 5, 4), "lstm: expected input (batch, time, 3), got (2, 5, 4)"),
        ((1, 2, 5, 3), "lstm: expected input (batch, time, 3), got (1, 2, 5, 3)"),
    ],
)
def test_apply_rejects_wrong_input_shapes(x_shape, message, key):
    layer, params, state = _layer_and_params(key)
    with pytest.raises(jn.ShapeError, match=exact(message)):
        jax.jit(layer.apply)(params, state, jnp.ones(x_shape))


def test_apply_error_carries_the_path(key):
    net = jn.serial(RNN(SimpleRNN(4)))
    _, params, state = net.init(key, (2, 5, 3))
    with pytest.raises(
        jn.ShapeError,
        match=exact("serial/simple_rnn_0: expected input (batch, time, 3), got (2, 5, 7)"),
    ):
        net.apply(params, state, jnp.ones((2, 5, 7)))


def test_a_cell_without_in_features_reports_the_rank_only(key):
    cell = LSTM(2)._replace(in_features=None)
    layer, params, state = _layer_and_params(key, RNN(cell))
    with pytest.raises(
        jn.ShapeError, match=exact("lstm: expected input (batch, time, features), got (2, 3)")
    ):
        layer.apply(params, state, jnp.ones((2, 3)))
    with pytest.raises(jn.ShapeError, match=exact("lstm: expected input (..., 3), got (2, 4)")):
        layer.apply(params, state, jnp.ones((2, 5, 4)))  # then the cell's step catches the width


@pytest.mark.parametrize(
    ("mask", "error", "message"),
    [
        (
            jnp.ones((2, 4), bool),
            jn.ShapeError,
            "lstm: expected mask (2, 5) (the input's batch and time axes), got (2, 4)",
        ),
        (
            jnp.ones((2, 5, 1), bool),
            jn.ShapeError,
            "lstm: expected mask (2, 5) (the input's batch and time axes), got (2, 5, 1)",
        ),
        (
            jnp.ones((2, 5)),
            TypeError,
            "lstm: mask must be a bool array (True = real step), got float32",
        ),
    ],
)
def test_apply_rejects_bad_masks(mask, error, message, key):
    layer, params, state = _layer_and_params(key)
    with pytest.raises(error, match=exact(message)):
        layer.apply(params, state, (jnp.ones((2, 5, 3)), mask))


def test_apply_rejects_a_tuple_that_is_not_a_pair(key):
    layer, params, state = _layer_and_params(key)
    x = jnp.ones((2, 5, 3))
    with pytest.raises(
        TypeError,
        match=exact("lstm: input must be an array x or a pair (x, mask), got a tuple of 3"),
    ):
        layer.apply(params, state, (x, x, x))


def test_scan_cell_errors(key):
    cell = GRU(2)
    params = cell.init(key, 3)
    with pytest.raises(
        jn.ShapeError, match=exact("gru: expected input (..., time, features), got (3,)")
    ):
        scan_cell(cell, params, jnp.ones(3))
    with pytest.raises(
        jn.ShapeError,
        match=exact("gru: expected mask (4,) (the input's batch and time axes), got (5,)"),
    ):
        scan_cell(cell, params, jnp.ones((4, 3)), mask=jnp.ones(5, bool))


@pytest.mark.parametrize("kind", list(CELLS))
def test_step_rejects_a_wrong_input_width(kind, key):
    cell = CELLS[kind](2)
    params = cell.init(key, 3)
    with pytest.raises(jn.ShapeError, match=exact(f"{kind}: expected input (..., 3), got (2, 4)")):
        cell.step(params, cell.initial_carry((2,)), jnp.ones((2, 4)))
