"""The layer contract (tests/contract.py) over the core layers and combinators."""

import numpy as np
import pytest

import jaxnet as jn
from tests import contract
from tests import references as ref
from tests.contract import Case


def _activation_cases() -> list[Case]:
    return [
        Case(name, getattr(jn.nn, name), (3, 5), lambda p, x, f=fn: f(x))
        for name, fn in ref.ACTIVATIONS.items()
    ]


def _two_dense(p, x):
    return ref.dense(p["dense_1"], ref.sigmoid(ref.dense(p["dense_0"], x)))


CASES = [
    Case("dense", jn.nn.Dense(9), (1, 8), ref.dense),
    Case("dense_3d_input", jn.nn.Dense(4), (2, 3, 5), ref.dense),
    Case("dense_no_bias", jn.nn.Dense(3, use_bias=False), (4, 6), ref.dense),
    Case("identity", jn.nn.Identity, (2, 3), lambda p, x: x),
    Case("flatten", jn.nn.Flatten, (2, 3, 4), lambda p, x: x.reshape(2, 12)),
    Case("reshape", jn.nn.Reshape((3, -1)), (2, 12), lambda p, x: x.reshape(2, 3, 4)),
    *_activation_cases(),
    Case("serial", jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4)), (2, 8), _two_dense),
    Case(
        "parallel_concat",
        jn.parallel(jn.nn.Dense(3), jn.nn.Tanh),
        (2, 4),
        lambda p, x: np.concatenate([ref.dense(p["dense_0"], x), np.tanh(x)], axis=-1),
    ),
    Case(
        "parallel_sum",
        jn.parallel(jn.nn.Dense(4), jn.nn.Identity, combine="sum"),
        (2, 4),
        lambda p, x: ref.dense(p["dense_0"], x) + x,
    ),
    Case(
        "residual",
        jn.residual(jn.serial(jn.nn.Dense(4), jn.nn.Tanh)),
        (3, 4),
        lambda p, x: x + np.tanh(ref.dense(p["serial_0"]["dense_0"], x)),
    ),
    Case("named", jn.named("hidden", jn.nn.Dense(2)), (2, 3), ref.dense),
]


@pytest.mark.parametrize("check", contract.CHECKS, ids=contract.CHECK_IDS)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_contract(case, check, key):
    check(case, key)
