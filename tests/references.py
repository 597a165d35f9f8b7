"""Independent NumPy references for the layers, written plainly in float64."""

import math

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def softmax(a):
    e = np.exp(a - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def gelu_tanh(a):
    return 0.5 * a * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (a + 0.044715 * a**3)))


def gelu_exact(a):
    """a·Φ(a), the normal CDF Φ(a) = (1 + erf(a/√2))/2 from math.erf, entry by entry."""
    a = np.asarray(a, np.float64)
    cdf = np.vectorize(lambda v: 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))))(a)
    return a * cdf


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
"""SELU's constants (Klambauer et al., 2017), as ``torch.nn.SELU`` documents them."""


def selu(a):
    return SELU_SCALE * np.where(a > 0, a, SELU_ALPHA * (np.exp(np.minimum(a, 0.0)) - 1.0))


ACTIVATIONS = {
    "Sigmoid": sigmoid,
    "Tanh": np.tanh,
    "Relu": lambda a: np.maximum(a, 0.0),
    "Softmax": softmax,
    "LogSoftmax": lambda a: np.log(softmax(a)),
    "LeakyRelu": lambda a: np.where(a > 0, a, 0.01 * a),
    "Elu": lambda a: np.where(a > 0, a, np.exp(a) - 1.0),
    "Gelu": gelu_tanh,
    "GeluExact": gelu_exact,
    "Selu": selu,
    "Softplus": lambda a: np.log1p(np.exp(a)),
    "Swish": lambda a: a * sigmoid(a),
}


def dense(params, x):
    """x · W + b, one output at a time, with explicit loops."""
    w = np.asarray(params["w"], np.float64)
    b = np.asarray(params.get("b", np.zeros(w.shape[1])), np.float64)
    x = np.asarray(x, np.float64)
    out = np.zeros((*x.shape[:-1], w.shape[1]))
    for index in np.ndindex(*x.shape[:-1]):
        for j in range(w.shape[1]):
            out[(*index, j)] = sum(x[(*index, i)] * w[i, j] for i in range(w.shape[0])) + b[j]
    return out
