"""Embedding: the contract over integer ids, lookups, out-of-range ids, dtypes, init, gradients."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from jaxnet.nn.embedding import Embedding, PositionEmbedding
from jaxnet.nn.linear import Dense, Flatten
from tests import contract
from tests.contract import Case

VOCAB = 7


def random_ids(key, shape):
    return jax.random.randint(key, shape, 0, VOCAB, dtype=jnp.int32)


def ref_embedding(params, ids):
    """Row ``ids[index]`` of the table for every index, one at a time."""
    table = np.asarray(params["embedding"], np.float64)
    ids = np.asarray(ids).astype(int)
    out = np.zeros((*ids.shape, table.shape[1]))
    for index in np.ndindex(*ids.shape):
        out[index] = table[ids[index]]
    return out


CASES = [
    Case(
        "embedding",
        Embedding(VOCAB, 4),
        (2, 3),
        ref_embedding,
        make_input=random_ids,
        differentiable_input=False,
    ),
    Case(
        "position_embedding",
        PositionEmbedding(),
        (2, 5, 3),
        lambda p, x: x + np.asarray(p["embedding"], np.float64)[None],
    ),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)


def test_shapes_params_and_lookup(key):
    layer = Embedding(10, 4)
    out_shape, params, state = layer.init(key, (None, 2, 3))
    assert out_shape == (None, 2, 3, 4)
    assert jax.tree.map(jnp.shape, params) == {"embedding": (10, 4)}
    assert state == {}
    ids = jnp.array([[[0, 9, 3], [3, 3, 1]]])
    y, _ = layer.apply(params, state, ids)
    assert y.shape == (1, 2, 3, 4) and y.dtype == jnp.float32
    np.testing.assert_array_equal(y[0, 0, 1], params["embedding"][9])
    np.testing.assert_array_equal(y[0, 1, 0], y[0, 0, 2])


@pytest.mark.parametrize("dtype", [jnp.int8, jnp.uint8, jnp.int32, jnp.uint32])
def test_any_integer_dtype_and_flat_ids_work(dtype, key):
    layer = Embedding(300, 2)
    out_shape, params, state = layer.init(key, (3,))  # one id per example
    y, _ = layer.apply(params, state, jnp.array([0, 5, 100], dtype))
    assert out_shape == y.shape == (3, 2)
    np.testing.assert_array_equal(y, ref_embedding(params, np.array([0, 5, 100])))


@pytest.mark.parametrize(
    ("ids", "dtype"),
    [(jnp.array([[0.0, 1.0]]), "float32"), (jnp.array([[True, False]]), "bool")],
    ids=["float", "bool"],
)
def test_non_integer_ids_are_a_type_error(ids, dtype, key):
    layer = Embedding(4, 2)
    _, params, state = layer.init(key, (1, 2))
    message = (
        f"embedding: expected integer ids, got an array of dtype {dtype} and shape (1, 2); "
        "convert with x.astype(jnp.int32) if it holds whole numbers"
    )
    with pytest.raises(TypeError, match=re.escape(message)):
        layer.apply(params, state, ids)
    with pytest.raises(TypeError, match=re.escape(message)):
        jax.jit(lambda x: layer.apply(params, state, x)[0])(ids)


def test_out_of_range_ids_give_nan_rows_also_under_jit(key):
    layer = Embedding(5, 3)
    _, params, state = layer.init(key, (1, 4))
    ids = jnp.array([[0, 5, -1, 4]])  # 5 is one past the end; -1 is not counted from the end
    for apply in (layer.apply, jax.jit(layer.apply)):
        y, _ = apply(params, state, ids)
        np.testing.assert_array_equal(y[0, 0], params["embedding"][0])
        np.testing.assert_array_equal(y[0, 3], params["embedding"][4])
        assert bool(jnp.isnan(y[0, 1]).all()) and bool(jnp.isnan(y[0, 2]).all())


def test_a_nan_row_is_found_by_intermediates(key):
    net = jn.serial(Embedding(5, 3), Flatten, Dense(1))
    _, params, state = net.init(key, (1, 2))
    outputs = jn.intermediates(net, params, state, jnp.array([[1, 5]]))
    first_bad = next(path for path, y in outputs.items() if not bool(jnp.isfinite(y).all()))
    assert first_bad == "serial/embedding_0"


def test_gradient_reaches_only_the_rows_looked_up(key):
    layer = Embedding(6, 2)
    _, params, state = layer.init(key, (1, 3))
    ids = jnp.array([[1, 4, 1]])
    grads = jax.grad(lambda p: jnp.sum(layer.apply(p, state, ids)[0]))(params)["embedding"]
    expected = np.zeros((6, 2))
    expected[1] = 2.0  # used twice
    expected[4] = 1.0
    np.testing.assert_array_equal(grads, expected)


def test_default_init_is_standard_normal(key):
    table = Embedding(1000, 16).init(key, (1,))[1]["embedding"]
    assert abs(float(table.mean())) < 0.02
    assert abs(float(table.std()) - 1.0) < 0.02


def test_embedding_init_is_used(key):
    layer = Embedding(3, 2, embedding_init=jax.nn.initializers.constant(0.5))
    np.testing.assert_array_equal(layer.init(key, (1,))[1]["embedding"], np.full((3, 2), 0.5))


def test_summary_counts_the_table(key):
    net = jn.serial(Embedding(10, 4), Flatten, Dense(2))
    rows = jn.summary_rows(net, (None, 3))
    assert [row.path for row in rows] == [
        "serial/embedding_0",
        "serial/flatten_0",
        "serial/dense_0",
    ]
    assert rows[0].param_count == 40 and rows[0].output_shape == (None, 3, 4)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((0, 4), {}, ValueError, "embedding: num_embeddings must be a positive int, got 0"),
        (
            (10.0, 4),
            {},
            TypeError,
            "embedding: num_embeddings must be a positive int, got float 10.0",
        ),
        ((10, -2), {}, ValueError, "embedding: features must be a positive int, got -2"),
        ((10, True), {}, TypeError, "embedding: features must be a positive int, got bool True"),
        (
            (10, 4),
            {"embedding_init": 1.0},
            TypeError,
            "embedding: embedding_init must be an initializer, a function (key, shape, dtype) -> array such as jax.nn.initializers.ones, got float 1.0",
        ),
    ],
)
def test_hyperparameters_are_validated_at_construction(args, kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        Embedding(*args, **kwargs)


def test_position_embedding_breaks_permutation_symmetry(key):
    _, params, state = PositionEmbedding().init(key, (1, 4, 3))
    x = jnp.ones((1, 4, 3))  # the same vector at every position
    y, _ = PositionEmbedding().apply(params, state, x)
    assert not np.allclose(y[0, 0], y[0, 1])


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (
            (2, 3),
            "position_embedding: expected input (batch, length, features) with known length and features, got (2, 3)",
        ),
        ((2, None, 3), "with known length and features, got (2, None, 3)"),
    ],
)
def test_position_embedding_needs_length_and_features(shape, message, key):
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        PositionEmbedding().init(key, shape)


def test_position_embedding_refuses_another_length(key):
    _, params, state = PositionEmbedding().init(key, (2, 4, 3))
    with pytest.raises(
        jn.ShapeError,
        match=re.escape("position_embedding: expected input (None, 4, 3), got (2, 5, 3)"),
    ):
        PositionEmbedding().apply(params, state, jnp.ones((2, 5, 3)))
