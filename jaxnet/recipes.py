"""Named, ready-to-run training jobs: the CLI's ``jaxnet train RECIPE``.

A recipe is data plus a net builder; its *config* (a flat dict of JSON values) holds every
hyperparameter, and is all :func:`build` needs to rebuild the job, which is how a run folder's
``config.json`` makes the run reloadable without the user's code.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import optax

from jaxnet import losses, metrics, nn
from jaxnet.core import Layer, serial
from jaxnet.data import Dataset, load
from jaxnet.train.fit import FitResult, fit, initial_state
from jaxnet.train.precision import check_precision
from jaxnet.train.state import TrainState

ACTIVATIONS: Mapping[str, Layer] = MappingProxyType(
    {
        "elu": nn.Elu,
        "gelu": nn.Gelu,
        "leaky_relu": nn.LeakyRelu,
        "relu": nn.Relu,
        "sigmoid": nn.Sigmoid,
        "softplus": nn.Softplus,
        "swish": nn.Swish,
        "tanh": nn.Tanh,
    }
)
"""The activations a recipe's ``--activation`` flag accepts."""


def momentum(learning_rate: Any) -> optax.GradientTransformation:
    """SGD with momentum 0.9 (Polyak's heavy ball), the usual companion of plain SGD."""
    return optax.sgd(learning_rate, momentum=0.9)


OPTIMIZERS: Mapping[str, Callable[..., optax.GradientTransformation]] = MappingProxyType(
    {"adam": optax.adam, "sgd": optax.sgd, "momentum": momentum}
)
"""The optimizers a config may name; each is called as ``OPTIMIZERS[name](learning_rate=η)``."""


def mlp(width: int, depth: int, activation: str, out_features: int) -> Layer:
    """``depth`` hidden layers of ``width`` units with ``activation``, then a linear output.

    ``depth=0`` is a linear model (``x·W + b``), which cannot solve XOR.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.recipes.mlp(128, 2, "relu", 10).init(jax.random.key(0), (1, 64))[0]
      (1, 10)
    """
    hidden = [layer for _ in range(depth) for layer in (nn.Dense(width), ACTIVATIONS[activation])]
    return serial(*hidden, nn.Dense(out_features))


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named training job: which data, which net, and the default hyperparameters.

    Attributes:
      name: the CLI name (``digits-mlp``).
      description: one line for ``jaxnet recipes``.
      dataset: a :func:`jaxnet.data.load` name.
      defaults: the default config (epochs, lr, batch_size, width, depth, activation, optimizer,
        seed); every key may be overridden.
    """

    name: str
    description: str
    dataset: str
    defaults: Mapping[str, Any]


class Job(NamedTuple):
    """A recipe bound to a config: everything ``fit`` needs."""

    config: dict[str, Any]
    net: Layer
    data: Dataset
    loss: Callable[..., Any]
    metrics: dict[str, Callable[..., Any]]
    optimizer: optax.GradientTransformation

    def initial_state(self) -> TrainState:
        """The state a run of this job starts from (a restore target for its checkpoints)."""
        c = self.config
        return initial_state(
            self.net, self.optimizer, self.data, seed=c["seed"], precision=c["precision"]
        )

    def fit(self, **kwargs: Any) -> FitResult:
        """Run :func:`jaxnet.train.fit` with this job's settings (``kwargs`` adds run options)."""
        c = self.config
        return fit(
            self.net,
            self.data,
            optimizer=self.optimizer,
            loss=self.loss,
            metrics=self.metrics,
            epochs=c["epochs"],
            batch_size=c["batch_size"],
            seed=c["seed"],
            precision=c["precision"],
            config=c,
            **kwargs,
        )


def _mlp_defaults(**overrides: Any) -> Mapping[str, Any]:
    base: dict[str, Any] = {"epochs": 20, "lr": 1e-3, "batch_size": 64, "width": 128, "depth": 2}
    base |= {"activation": "relu", "optimizer": "adam", "seed": 0, "precision": "float32"}
    return MappingProxyType(base | overrides)


RECIPES: Mapping[str, Recipe] = MappingProxyType(
    {
        r.name: r
        for r in (
            Recipe(
                "digits-mlp",
                "the lecture's deep net on 8×8 handwritten digits (10 classes)",
                "digits",
                _mlp_defaults(),
            ),
            Recipe(
                "xor",
                "XOR: a linear model (--depth 0) fails, one hidden layer solves it",
                "xor",
                _mlp_defaults(
                    epochs=30, lr=0.05, batch_size=32, width=8, depth=1, activation="tanh"
                ),
            ),
            Recipe(
                "temperature",
                "non-linear regression of a seasonal temperature curve",
                "temperature",
                _mlp_defaults(epochs=60, lr=0.01, width=32, depth=2, activation="tanh"),
            ),
            Recipe(
                "iris",
                "iris flowers, 4 measurements, 3 species",
                "iris",
                _mlp_defaults(epochs=60, lr=0.01, batch_size=16, width=16, depth=1),
            ),
            Recipe(
                "breast-cancer",
                "breast cancer diagnosis, 30 features, 2 classes",
                "breast_cancer",
                _mlp_defaults(epochs=30, lr=1e-3, batch_size=32, width=32, depth=1),
            ),
        )
    }
)
"""Every recipe by name."""


def names() -> tuple[str, ...]:
    """The recipe names, in the order ``jaxnet recipes`` lists them."""
    return tuple(RECIPES)


def get(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
      ValueError: for an unknown name; the message lists the known ones.
    """
    if name not in RECIPES:
        close = difflib.get_close_matches(str(name), list(RECIPES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown recipe {name!r}{hint} (known: {', '.join(RECIPES)})")
    return RECIPES[name]


def _check_int(config: Mapping[str, Any], key: str, minimum: int) -> None:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key} must be an int >= {minimum}, got {value!r}")


def make_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The full config of recipe ``name`` with ``overrides`` (None values are ignored), checked.

    Raises:
      ValueError: for an unknown recipe, option or activation, or an out-of-range value
        (``lr <= 0``, ``width < 1``, ``depth < 0``, ``epochs < 1``, ``batch_size < 1``).

    Example:
      >>> make_config("digits-mlp", lr=0.01)["lr"]
      0.01
    """
    recipe = get(name)
    unknown = sorted(set(overrides) - set(recipe.defaults))
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for recipe {name!r}")
    config = {"recipe": name, "dataset": recipe.dataset, **recipe.defaults}
    config |= {k: v for k, v in overrides.items() if v is not None}
    check_config(config)
    return config


def check_config(config: Mapping[str, Any]) -> None:
    """Check a config's values (see :func:`make_config`)."""
    lr = config["lr"]
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    for key, minimum in (("epochs", 1), ("batch_size", 1), ("width", 1), ("depth", 0), ("seed", 0)):
        _check_int(config, key, minimum)
    if config["activation"] not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {config['activation']!r} (known: {', '.join(ACTIVATIONS)})"
        )
    check_precision(config["precision"])
    if config["optimizer"] not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config['optimizer']!r} (known: {', '.join(OPTIMIZERS)})"
        )


def build(config: Mapping[str, Any]) -> Job:
    """The job a config describes: data, net, loss, metrics and optimizer.

    Raises:
      ValueError: if the config names an unknown recipe or holds a bad value.
    """
    recipe = get(config["recipe"])
    config = make_config(recipe.name, **{k: config[k] for k in recipe.defaults if k in config})
    data = load(config["dataset"], seed=config["seed"])
    classify = data.task == "classification"
    out = data.num_classes if classify and data.num_classes else data.y_train.shape[-1]
    net = mlp(config["width"], config["depth"], config["activation"], out)
    loss = losses.softmax_cross_entropy if classify else losses.mse
    metric_fns = {"accuracy": metrics.accuracy} if classify else {}
    optimizer = OPTIMIZERS[config["optimizer"]](learning_rate=config["lr"])
    return Job(config, net, data, loss, metric_fns, optimizer)
