"""Bad input to ``fit`` is one clear error, raised before anything is written or compiled."""

import re
import sys

import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.train import checks

XOR = jn.data.load("xor")  # 2 features, labels 0/1
RNG = np.random.default_rng(0)
FOUR_CLASSES = jn.data.from_arrays(RNG.normal(size=(40, 2)), np.arange(40) % 4)
TWO_TARGETS = jn.data.from_arrays(RNG.normal(size=(40, 2)), RNG.normal(size=(40, 2)))
ONE_HOT = jn.data.from_arrays(
    RNG.normal(size=(40, 2)), np.eye(2, dtype=np.float32)[np.arange(40) % 2], task="regression"
)


def exactly(message: str) -> str:
    """A pattern that matches the whole message and nothing else."""
    return f"^{re.escape(message)}$"


def _fit(net=None, data=XOR, **kwargs):
    options = {"optimizer": optax.adam(0.01), "loss": jn.losses.softmax_cross_entropy}
    options |= {"epochs": 1, "batch_size": 16, "progress": False}
    return jn.train.fit(net or jn.nn.Dense(2), data, **(options | kwargs))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"optimizer": "adam"},
            "fit: optimizer must be an optax.GradientTransformation such as optax.adam(1e-3), "
            "got the string 'adam'",
        ),
        (
            {"optimizer": optax.adam},
            "fit: optimizer must be an optax.GradientTransformation such as optax.adam(1e-3), "
            "got the function adam; call it to make one",
        ),
        (
            {"optimizer": 0.01},
            "fit: optimizer must be an optax.GradientTransformation such as optax.adam(1e-3), "
            "got float 0.01",
        ),
        (
            {"loss": "mse"},
            "fit: loss must be a function loss(predictions, targets) such as jn.losses.mse, "
            "got the string 'mse'",
        ),
        (
            {"loss": None},
            "fit: loss must be a function loss(predictions, targets) such as jn.losses.mse, "
            "got NoneType None",
        ),
        (
            {"metrics": ["accuracy"]},
            "fit: metrics must be a dict name -> metric(predictions, targets) such as "
            "{'accuracy': jn.metrics.accuracy}, got list ['accuracy']",
        ),
        (
            {"metrics": jn.metrics.accuracy},
            "fit: metrics must be a dict name -> metric(predictions, targets) such as "
            "{'accuracy': jn.metrics.accuracy}, got the function accuracy",
        ),
        (
            {"metrics": {"accuracy": "accuracy"}},
            "fit: metrics['accuracy'] must be a function metric(predictions, targets) such as "
            "jn.metrics.accuracy, got the string 'accuracy'",
        ),
        (
            {"metrics": {"accuracy": 1}},
            "fit: metrics['accuracy'] must be a function metric(predictions, targets) such as "
            "jn.metrics.accuracy, got int 1",
        ),
        (
            {"metrics": {0: jn.metrics.accuracy}},
            "fit: metrics' names must be strings, got int 0",
        ),
        ({"seed": 1.5}, "fit: seed must be an int, got 1.5"),
        ({"seed": True}, "fit: seed must be an int, got True"),
        ({"seed": "0"}, "fit: seed must be an int, got '0'"),
    ],
    ids=lambda v: re.sub(r" at 0x[0-9a-f]+", "", repr(v))[:40] if isinstance(v, dict) else None,
)  # no addresses in the ids: pytest-xdist's workers must collect the same names
def test_bad_arguments_show_the_call_to_use(kwargs, message):
    with pytest.raises(TypeError, match=exactly(message)):
        _fit(**kwargs)


def test_a_numpy_int_seed_is_an_int():
    result = _fit(seed=np.int64(3), epochs=1)
    assert result.history[0]["epoch"] == 1
    checks.check_seed(np.int32(0))


def test_too_few_outputs_for_the_classes_is_said_before_training():
    net = jn.serial(jn.nn.Dense(5), jn.nn.Relu, jn.nn.Dense(3))
    message = (
        "fit: the data has 4 classes (labels 0..3) but the net outputs 3 values per example "
        "(output shape (None, 3)); give the last layer 4 units"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        _fit(net, FOUR_CLASSES, batch_size=8)
    one = "fit: the data has 2 classes (labels 0..1) but the net outputs 1 value per example "
    with pytest.raises(ValueError, match=re.escape(one)):
        _fit(jn.nn.Dense(1))


def test_regression_targets_must_match_the_output_width():
    message = (
        "fit: the targets have 2 values per example (y_train shape (32, 2)) but the net outputs "
        "3 values per example (output shape (None, 3)); give the last layer 2 units"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        _fit(jn.nn.Dense(3), TWO_TARGETS, loss=jn.losses.mse, batch_size=8)
    flat = jn.serial(jn.nn.Dense(4), jn.nn.Reshape((2, 2)))
    message = (
        "fit: mse needs predictions shaped like the targets, (None, 2) (y_train shape (32, 2)), "
        "but the net outputs (None, 2, 2)"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        _fit(flat, TWO_TARGETS, loss=jn.losses.mse, batch_size=8)


def test_one_hot_targets_need_one_output_per_class():
    message = (
        "fit: the targets have 2 values per example (y_train shape (32, 2)) but the net outputs "
        "3 values per example (output shape (None, 3)); give the last layer 2 units"
    )
    with pytest.raises(ValueError, match=exactly(message)):
        _fit(jn.nn.Dense(3), ONE_HOT, batch_size=8)
    assert _fit(jn.nn.Dense(2), ONE_HOT, batch_size=8).stopped == "completed"


def _squeeze_init(key, input_shape):
    return tuple(input_shape[:-1]), {}, {}


def _squeeze_apply(params, state, x, *, key=None, train=False):
    return x[..., 0], state


SQUEEZE = jn.Layer(_squeeze_init, _squeeze_apply, "squeeze")  # (B, 1) -> (B,)


def test_one_logit_with_binary_labels_still_trains():
    """sigmoid_binary_cross_entropy on one logit per example: labels 0/1 of shape (n,), or 0/1
    float targets of shape (n, 1); more outputs than classes are allowed too."""
    net = jn.serial(jn.nn.Dense(1), SQUEEZE)
    loss = jn.losses.sigmoid_binary_cross_entropy
    assert _fit(net, loss=loss).stopped == "completed"
    binary = jn.data.from_arrays(XOR.x_train, XOR.y_train.astype(np.float32))  # (n, 1) floats
    assert _fit(jn.nn.Dense(1), binary, loss=loss).stopped == "completed"
    assert _fit(jn.nn.Dense(3)).stopped == "completed"  # an unused third class


def test_a_missing_tensorboard_extra_is_said_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if it were not installed
    message = "TensorBoard logging needs tensorboardX: pip install 'jaxnet-functional[tensorboard]'"
    with pytest.raises(ImportError, match=f"^{re.escape(message)}$"):
        jn.train.fit(
            jn.serial(jn.nn.Dense(2)),
            jn.data.load("xor"),
            optimizer=optax.sgd(0.1),
            loss=jn.losses.softmax_cross_entropy,
            epochs=1,
            run_dir=tmp_path / "run",
            loggers=["tensorboard"],
            progress=False,
        )
    assert not (tmp_path / "run").exists()
