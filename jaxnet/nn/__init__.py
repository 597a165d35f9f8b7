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
from jaxnet.nn.attention import MultiHeadAttention
from jaxnet.nn.conv import Conv, ConvTranspose
from jaxnet.nn.dropout import Dropout
from jaxnet.nn.embedding import Embedding, PositionEmbedding
from jaxnet.nn.initializers import NamedInitializer, initializer
from jaxnet.nn.linear import Dense, Flatten, Identity, Reshape
from jaxnet.nn.norm import BatchNorm, LayerNorm
from jaxnet.nn.pooling import AvgPool, GlobalAvgPool, MaxPool
from jaxnet.nn.recurrent import GRU, LSTM, RNN, Cell, SimpleRNN, scan_cell

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Cell",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Dropout",
    "Elu",
    "Embedding",
    "Flatten",
    "Gelu",
    "GlobalAvgPool",
    "Identity",
    "LayerNorm",
    "LeakyRelu",
    "LogSoftmax",
    "MaxPool",
    "MultiHeadAttention",
    "NamedInitializer",
    "PositionEmbedding",
    "Relu",
    "Reshape",
    "Sigmoid",
    "SimpleRNN",
    "Softmax",
    "Softplus",
    "Swish",
    "Tanh",
    "initializer",
    "scan_cell",
]
