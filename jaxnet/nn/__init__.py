"""The layer zoo: each name is a ``Layer`` or a function that builds one."""

from jaxnet.nn.activations import (
    Activation,
    Elu,
    Gelu,
    LeakyRelu,
    LogSoftmax,
    Relu,
    Sigmoid,
    Softmax,
    Softplus,
    Swish,
    Tanh,
)
from jaxnet.nn.linear import Dense, Flatten, Identity, Reshape

__all__ = [
    "Activation",
    "Dense",
    "Elu",
    "Flatten",
    "Gelu",
    "Identity",
    "LeakyRelu",
    "LogSoftmax",
    "Relu",
    "Reshape",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
]
