"""The layer zoo: each name is a ``Layer`` or a function that builds one."""

from jaxnet.nn.activations import (
    Activation,
    Elu,
    Gelu,
    GeluExact,
    LeakyRelu,
    LogSoftmax,
    Relu,
    Selu,
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
from jaxnet.nn.fan import FanInConcat, FanInSum, FanOut, Select
from jaxnet.nn.initializers import NamedInitializer, initializer
from jaxnet.nn.linear import Dense, Flatten, Identity, Reshape
from jaxnet.nn.norm import BatchNorm, GroupNorm, LayerNorm, RMSNorm
from jaxnet.nn.pooling import AvgPool, GlobalAvgPool, MaxPool, SumPool
from jaxnet.nn.recurrent import GRU, LSTM, RNN, Bidirectional, Cell, SimpleRNN, scan_cell

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Activation",
    "AvgPool",
    "BatchNorm",
    "Bidirectional",
    "Cell",
    "Conv",
    "ConvTranspose",
    "Dense",
    "Dropout",
    "Elu",
    "Embedding",
    "FanInConcat",
    "FanInSum",
    "FanOut",
    "Flatten",
    "Gelu",
    "GeluExact",
    "GlobalAvgPool",
    "GroupNorm",
    "Identity",
    "LayerNorm",
    "LeakyRelu",
    "LogSoftmax",
    "MaxPool",
    "MultiHeadAttention",
    "NamedInitializer",
    "PositionEmbedding",
    "RMSNorm",
    "Relu",
    "Reshape",
    "Select",
    "Selu",
    "Sigmoid",
    "SimpleRNN",
    "Softmax",
    "Softplus",
    "SumPool",
    "Swish",
    "Tanh",
    "initializer",
    "scan_cell",
]
