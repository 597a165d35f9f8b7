"""Losses agree with plain formulas and refuse mismatched shapes; accuracy reads three forms."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxnet as jn
from tests.references import sigmoid, softmax

LOGITS = jnp.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0], [1.0, 1.0, 4.0], [-3.0, 0.0, 0.1]])
LABELS = jnp.array([0, 1, 0, 2])


def test_mse_is_mean_squared_error():
    y = jnp.array([[1.0, 2.0], [3.0, 5.0]])
    t = jnp.array([[1.0, 0.0], [0.0, 5.0]])
    assert float(jn.losses.mse(y, t)) == pytest.approx((0 + 4 + 9 + 0) / 4)


def test_softmax_cross_entropy_integer_and_one_hot_agree_with_numpy():
    expected = -np.mean(np.log(softmax(np.asarray(LOGITS, np.float64)))[np.arange(4), LABELS])
    assert float(jn.losses.softmax_cross_entropy(LOGITS, LABELS)) == pytest.approx(
        expected, rel=1e-6
    )
    one_hot = jax.nn.one_hot(LABELS, 3)
    assert float(jn.losses.softmax_cross_entropy(LOGITS, one_hot)) == pytest.approx(
        expected, rel=1e-6
    )


def test_softmax_cross_entropy_is_stable_for_huge_logits():
    loss = jn.losses.softmax_cross_entropy(jnp.array([[1000.0, -1000.0]]), jnp.array([1]))
    assert float(loss) == pytest.approx(2000.0)


def test_sigmoid_binary_cross_entropy_agrees_with_numpy():
    logits = jnp.array([[0.3], [-2.0], [4.0]])
    labels = np.array([[1], [0], [0]])
    s = sigmoid(np.asarray(logits, np.float64))
    expected = -np.mean(labels * np.log(s) + (1 - labels) * np.log(1 - s))
    got = jn.losses.sigmoid_binary_cross_entropy(logits, jnp.asarray(labels))
    assert float(got) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("loss", "a", "b", "message"),
    [
        (
            jn.losses.mse,
            (32, 1),
            (32,),
            "mse: predictions and targets must have the same shape, got (32, 1) and (32,)",
        ),
        (
            jn.losses.softmax_cross_entropy,
            (32,),
            (32,),
            "softmax_cross_entropy: integer labels of shape (32,) need logits of shape (32, 'num_classes'), got (32,)",
        ),
        (
            jn.losses.sigmoid_binary_cross_entropy,
            (8, 1),
            (8,),
            "sigmoid_binary_cross_entropy: logits and labels must have the same shape, got (8, 1) and (8,)",
        ),
    ],
)
def test_losses_refuse_mismatched_shapes(loss, a, b, message):
    labels = jnp.zeros(b, jnp.int32) if loss is jn.losses.softmax_cross_entropy else jnp.zeros(b)
    with pytest.raises(jn.ShapeError, match=re.escape(message)):
        loss(jnp.zeros(a), labels)


def test_one_hot_labels_must_match_logits():
    with pytest.raises(
        jn.ShapeError, match=re.escape("logits and one-hot labels must have the same shape")
    ):
        jn.losses.softmax_cross_entropy(jnp.zeros((4, 3)), jnp.zeros((4, 2)))


def test_accuracy_integer_one_hot_and_binary():
    # argmax per row is [0, 1, 2, 2] against labels [0, 1, 0, 2]
    assert float(jn.metrics.accuracy(LOGITS, LABELS)) == 0.75
    assert float(jn.metrics.accuracy(LOGITS, jax.nn.one_hot(LABELS, 3))) == 0.75
    binary = jnp.array([[0.3], [-2.0], [4.0], [-0.1]])
    assert float(jn.metrics.accuracy(binary, jnp.array([[1], [0], [0], [1]]))) == 0.5
    assert float(jn.metrics.accuracy(binary[:, 0], jnp.array([1.0, 0.0, 1.0, 0.0]))) == 1.0


def test_accuracy_refuses_labels_that_fit_no_form():
    with pytest.raises(
        jn.ShapeError,
        match=re.escape("accuracy: labels of shape (3,) do not fit logits of shape (4, 3)"),
    ):
        jn.metrics.accuracy(LOGITS, jnp.array([0, 1, 2]))


def test_losses_work_under_jit_and_grad():
    grad = jax.jit(jax.grad(jn.losses.softmax_cross_entropy))(LOGITS, LABELS)
    expected = (softmax(np.asarray(LOGITS, np.float64)) - np.eye(3)[LABELS]) / 4
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-7)


def test_accuracy_of_one_logit_per_example_with_integer_labels_is_binary():
    logits = jnp.array([[3.0], [2.0], [-1.0], [0.5]])
    assert float(jn.metrics.accuracy(logits, jnp.array([1, 1, 0, 0]))) == 0.75
