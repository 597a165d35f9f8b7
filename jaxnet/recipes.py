"""Named, ready-to-run training jobs: the CLI's ``jaxnet train RECIPE``.

A recipe is data plus a net builder; its *config* (a flat dict of JSON values) holds every
hyperparameter, and is all :func:`build` needs to rebuild the job, which is how a run folder's
``config.json`` makes the run reloadable without the user's code.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import optax

from jaxnet import losses, metrics, nn, sweep
from jaxnet.core import Layer, residual, serial
from jaxnet.data import Dataset, from_file, load, persistence_mse
from jaxnet.graph import graph
from jaxnet.optim.optimizers import OPTIMIZERS, momentum, optimizer
from jaxnet.optim.plateau import ReduceOnPlateau
from jaxnet.optim.precision import check_precision
from jaxnet.optim.state import TrainState
from jaxnet.optim.update import Update
from jaxnet.train.fit import FitResult, fit, initial_state

__all__ = [
    "ACTIVATIONS",
    "CELLS",
    "OPTIMIZERS",
    "RECIPES",
    "Job",
    "Recipe",
    "build",
    "check_config",
    "cnn",
    "get",
    "grid",
    "make_config",
    "mlp",
    "momentum",
    "names",
    "recurrent",
    "transformer",
    "unet",
]


ACTIVATIONS: Mapping[str, Layer] = MappingProxyType(
    {
        "elu": nn.Elu,
        "gelu": nn.Gelu,
        "gelu_exact": nn.GeluExact,
        "leaky_relu": nn.LeakyRelu,
        "relu": nn.Relu,
        "selu": nn.Selu,
        "sigmoid": nn.Sigmoid,
        "softplus": nn.Softplus,
        "swish": nn.Swish,
        "tanh": nn.Tanh,
    }
)
"""The activations a recipe's ``--activation`` flag accepts."""


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


def cnn(
    width: int, depth: int, activation: str, out_features: int, image_shape: Sequence[int]
) -> Layer:
    """The book's convolutional net: ``depth`` blocks of 3×3 convolution (``width``, then twice
    as many channels each block), activation and 2×2 max pooling, then a linear classifier.

    Flat images (``(B, 64)`` for digits) are reshaped to ``image_shape`` first; pooling stops
    halving once the image is a single pixel.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.recipes.cnn(16, 2, "relu", 10, (8, 8, 1)).init(jax.random.key(0), (1, 64))[0]
      (1, 10)
    """
    layers: list[Layer] = [nn.Reshape(tuple(image_shape))]
    size = min(image_shape[:-1])
    for block in range(depth):
        layers += [nn.Conv(width * 2**block, (3, 3)), ACTIVATIONS[activation]]
        if size >= 2:
            layers.append(nn.MaxPool((2, 2)))
            size //= 2
    return serial(*layers, nn.Flatten, nn.Dense(out_features))


def unet(
    width: int, depth: int, activation: str, out_features: int, image_shape: Sequence[int]
) -> Layer:
    """A U-Net classifier (a :func:`jaxnet.graph`): ``depth`` levels down, a bottom, and as
    many back up, each joined to the encoder map of its size by a skip connection.

    Level ``i`` (``0`` to ``depth - 1``) is a 3×3 convolution of ``width·2**i`` channels and
    ``activation`` (node ``down_i``), then 2×2 max pooling (``pool_i``); the bottom is a 3×3
    convolution of ``width·2**depth`` channels at ``1/2**depth`` of the image's size. Back up,
    each level ``i`` is a 2×2 transposed convolution of stride 2 to ``width·2**i`` channels
    (``up_i``), joined to ``down_i`` on the channel axis (``join_i``, ``FanInConcat(-1)``:
    ``2·width·2**i`` channels), then a 3×3 convolution and ``activation`` (``decode_i``). The
    head (``classes``) flattens the full-size map into a linear classifier. Flat images
    (``(B, 64)`` for digits) are reshaped to ``image_shape`` first (node ``image``).

    Raises:
      ValueError: if ``depth < 1`` (no level, no skip connection), or the image's height or
        width does not divide by ``2**depth`` (an upsampled map would not meet its encoder's).

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.recipes.unet(8, 1, "relu", 10, (8, 8, 1)).init(jax.random.key(0), (1, 64))[0]
      (1, 10)
    """
    if depth < 1:
        raise ValueError(f"a U-Net needs depth >= 1 (levels down and back up), got {depth}")
    sides = tuple(image_shape[:-1])
    if any(side % 2**depth for side in sides):
        size = "×".join(map(str, sides))
        times = "once" if depth == 1 else f"{depth} times"
        advice = "" if depth == 1 else ": use a smaller depth"
        raise ValueError(
            f"a U-Net of depth {depth} halves the image {times}, so its sides must divide by "
            f"{2**depth}; the images are {size}{advice}"
        )

    def conv(channels: int) -> Layer:
        return serial(nn.Conv(channels, (3, 3)), ACTIVATIONS[activation])

    nodes: dict[str, tuple[Layer, Any]] = {"image": (nn.Reshape(tuple(image_shape)), "input")}
    below = "image"
    for level in range(depth):  # (B, H/2**level, W/2**level, width·2**level) each
        nodes[f"down_{level}"] = (conv(width * 2**level), below)
        nodes[f"pool_{level}"] = (nn.MaxPool((2, 2)), f"down_{level}")
        below = f"pool_{level}"
    nodes["bottom"] = (conv(width * 2**depth), below)  # (B, H/2**depth, W/2**depth, ...)
    below = "bottom"
    for level in reversed(range(depth)):
        channels = width * 2**level
        nodes[f"up_{level}"] = (nn.ConvTranspose(channels, (2, 2), strides=2), below)
        nodes[f"join_{level}"] = (nn.FanInConcat(-1), (f"up_{level}", f"down_{level}"))
        nodes[f"decode_{level}"] = (conv(channels), f"join_{level}")
        below = f"decode_{level}"
    nodes["classes"] = (serial(nn.Flatten, nn.Dense(out_features)), below)
    return graph(nodes)


def recurrent(width: int, depth: int, cell: str, out_features: int) -> Layer:
    """``depth`` recurrent layers of ``width`` units (``"lstm"``, ``"gru"`` or ``"rnn"``) over
    a sequence ``(B, T, F)``; the last one keeps only its final output, read by a linear layer.

    Example:
      >>> import jax, jaxnet as jn
      >>> jn.recipes.recurrent(8, 1, "lstm", 1).init(jax.random.key(0), (2, 5, 1))[0]
      (2, 1)
    """
    layers = [nn.RNN(CELLS[cell](width), return_sequences=i < depth - 1) for i in range(depth)]
    return serial(*layers, nn.Dense(out_features))


def transformer(width: int, depth: int, heads: int, out_features: int, vocabulary: int) -> Layer:
    """Token ids ``(B, T)`` → per-position logits ``(B, T, out_features)``: an embedding plus
    learned positions, then ``depth`` pre-norm blocks of self-attention and a ReLU MLP, each
    inside a residual connection.

    Example:
      >>> import jax, jaxnet as jn
      >>> net = jn.recipes.transformer(16, 1, 2, 10, vocabulary=10)
      >>> net.init(jax.random.key(0), (2, 8))[0]
      (2, 8, 10)
    """
    block = [
        residual(serial(nn.LayerNorm(), nn.MultiHeadAttention(heads))),
        residual(serial(nn.LayerNorm(), nn.Dense(2 * width), nn.Relu, nn.Dense(width))),
    ]
    body = [layer for _ in range(depth) for layer in block]
    return serial(
        nn.Embedding(vocabulary, width),
        nn.PositionEmbedding(),
        *body,
        nn.LayerNorm(),
        nn.Dense(out_features),
    )


CELLS: Mapping[str, Callable[[int], nn.Cell]] = MappingProxyType(
    {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.SimpleRNN}
)
"""The recurrent cells a recipe's ``cell`` setting accepts."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named training job: which data, which net, and the default hyperparameters.

    Attributes:
      name: the CLI name (``digits-mlp``).
      description: one line for ``jaxnet recipes``.
      dataset: a :func:`jaxnet.data.load` name.
      defaults: the default config (epochs, lr, batch_size, width, depth, activation, optimizer,
        seed, precision, and per architecture ``cell`` or ``heads``); every key may be
        overridden.
      architecture: ``"mlp"``, ``"cnn"``, ``"unet"``, ``"recurrent"`` or ``"transformer"``.
    """

    name: str
    description: str
    dataset: str
    defaults: Mapping[str, Any]
    architecture: str = "mlp"


class Job(NamedTuple):
    """A recipe bound to a config: everything ``fit`` needs, and the baselines to beat."""

    config: dict[str, Any]
    net: Layer
    data: Dataset
    loss: Callable[..., Any]
    metrics: dict[str, Callable[..., Any]]
    optimizer: optax.GradientTransformation
    baselines: Mapping[str, float] = MappingProxyType({})
    """Reference scores on the test split, e.g. ``{"persistence test_loss": 8.66}``."""

    def initial_state(self) -> TrainState:
        """The state a run of this job starts from (a restore target for its checkpoints)."""
        c = self.config
        return initial_state(
            self.net,
            self.optimizer,
            self.data,
            seed=c["seed"],
            precision=c["precision"],
            update=_update(c) if c.get("plateau") else None,
        )

    def fit(self, **kwargs: Any) -> FitResult:
        """Run :func:`jaxnet.train.fit` with this job's settings (``kwargs`` adds run options)."""
        c = self.config
        if c.get("plateau"):
            kwargs["update"] = _update(c, kwargs.get("update"))
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


def _update(config: Mapping[str, Any], given: Update | None = None) -> Update:
    """``given`` (or the default) with ``config["plateau"]`` (``jaxnet train --plateau N``):
    reduce the rate tenfold after N epochs without improvement of the run's monitor.

    Raises:
      ValueError: ``given`` has a plateau rule of its own.
    """
    given = given or Update()
    if given.reduce_on_plateau is not None:
        raise ValueError(
            "fit: the config's plateau and update=Update(reduce_on_plateau=...) both set the "
            "rule; keep one"
        )
    rule = ReduceOnPlateau(patience=config["plateau"])
    return dataclasses.replace(given, reduce_on_plateau=rule)


def _mlp_defaults(**overrides: Any) -> Mapping[str, Any]:
    base: dict[str, Any] = {"epochs": 20, "lr": 1e-3, "batch_size": 64, "width": 128, "depth": 2}
    base |= {"activation": "relu", "optimizer": "adam", "seed": 0, "precision": "float32"}
    base["val_fraction"] = 0.1  # the best checkpoint and early stopping look here, not at test
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
            Recipe(
                "digits-cnn",
                "a convolutional net on the 8×8 digits: two conv blocks and a linear classifier",
                "digits",
                _mlp_defaults(epochs=15, lr=2e-3, batch_size=32, width=32, depth=2),
                "cnn",
            ),
            Recipe(
                "digits-unet",
                "a U-Net on the 8×8 digits: conv and pool to 4×4, a transposed conv back up, "
                "a skip connection joined on the channels, a linear classifier",
                "digits",
                _mlp_defaults(epochs=10, lr=2e-3, batch_size=32, width=16, depth=1),
                "unet",
            ),
            Recipe(
                "temperature-lstm",
                "forecast tomorrow's temperature from 28 days with an LSTM (vs persistence)",
                "temperature_forecast",
                _mlp_defaults(epochs=30, lr=5e-3, batch_size=64, width=32, depth=1, cell="lstm"),
                "recurrent",
            ),
            Recipe(
                "reverse-digits",
                "self-attention learns to reverse strings of 8 digits, position by position",
                "reverse_digits",
                _mlp_defaults(epochs=10, lr=3e-3, batch_size=64, width=32, depth=1, heads=4),
                "transformer",
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
    overrides = {k: v for k, v in overrides.items() if v is not None}
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
    val_fraction = config["val_fraction"]
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, int | float):
        raise ValueError(f"val_fraction must be a number in [0, 0.8), got {val_fraction!r}")
    if not 0 <= val_fraction < 0.8:  # the test split takes 0.2
        raise ValueError(f"val_fraction must be in [0, 0.8), got {val_fraction!r}")
    if "cell" in config and config["cell"] not in CELLS:
        raise ValueError(f"unknown cell {config['cell']!r} (known: {', '.join(CELLS)})")
    if "heads" in config:
        _check_int(config, "heads", 1)
        if config["width"] % config["heads"]:
            raise ValueError(f"width={config['width']} must divide by heads={config['heads']}")
    if config["optimizer"] not in OPTIMIZERS:
        raise ValueError(
            f"unknown optimizer {config['optimizer']!r} (known: {', '.join(OPTIMIZERS)})"
        )


def _build_net(architecture: str, c: Mapping[str, Any], data: Dataset, out: int) -> Layer:
    width, depth = c["width"], c["depth"]
    if architecture == "cnn":
        return cnn(width, depth, c["activation"], out, _image_shape(data))
    if architecture == "unet":
        return unet(width, depth, c["activation"], out, _image_shape(data))
    if architecture == "recurrent":
        return recurrent(width, depth, c["cell"], out)
    if architecture == "transformer":
        return transformer(width, depth, c["heads"], out, vocabulary=out)
    return mlp(width, depth, c["activation"], out)


def _image_shape(data: Dataset) -> tuple[int, ...]:
    """The ``(height, width, channels)`` a cnn reshapes a sample to: the dataset's, or the
    features' own, ``(height, width)`` taken as one channel."""
    if data.image_shape:
        return tuple(data.image_shape)
    shape = tuple(data.feature_shape)
    return shape if len(shape) == 3 else (*shape, 1)


_FEATURE_AXES: Mapping[str, tuple[tuple[int, ...], str]] = MappingProxyType(
    {  # the feature axes per row each architecture reads from a data file, and what that is
        "mlp": (
            (1,),
            "an MLP takes one axis of features, x of shape (n, features); reshape x, or use "
            "digits-cnn for images or temperature-lstm for sequences",
        ),
        "cnn": ((2, 3), "a cnn takes images, x of shape (n, height, width[, channels])"),
        "unet": ((2, 3), "a U-Net takes images, x of shape (n, height, width[, channels])"),
        "recurrent": ((2,), "a recurrent net takes sequences, x of shape (n, steps, features)"),
        "transformer": ((), "a transformer takes token ids, which a data file does not give"),
    }
)


def _check_architecture(recipe: Recipe, data: Dataset) -> None:
    """A recipe's net must fit a file's features (see ``_FEATURE_AXES``)."""
    axes, takes = _FEATURE_AXES[recipe.architecture]
    shape = data.feature_shape
    if len(shape) in axes:
        return
    fits = f"recipe {recipe.name!r} ({recipe.architecture}) does not fit {data.name}'s"
    if len(shape) == 1:
        raise ValueError(
            f"{fits} {shape[0]} features per row; use an MLP recipe such as digits-mlp ({takes})"
        )
    raise ValueError(f"{fits} features of shape {tuple(shape)} per row: {takes}")


def _check_labels(path: str, target: str | None, data: Dataset) -> None:
    """A CSV's whole-number target is read as class labels 0, 1, ...; refuse one whose values
    are mostly not labels (a price, a year), which would make a huge, mostly empty output."""
    if data.task != "classification" or not path.lower().endswith(".csv") or not data.num_classes:
        return
    parts = (data.y_train, data.y_val, data.y_test)
    seen = len(np.unique(np.concatenate([y for y in parts if y is not None])))
    if 2 * seen < data.num_classes:
        column = f"column {target!r}" if target else "the target column"
        raise ValueError(
            f"{path}: {column} holds whole numbers, read as class labels 0 to "
            f"{data.num_classes - 1}, but only {seen} of those {data.num_classes} classes occur; "
            "number the classes 0, 1, 2, ..., or pass --task regression for a numeric target"
        )


def _file_data(recipe: Recipe, config: Mapping[str, Any]) -> Dataset:
    """The user's file as the recipe's data; every problem is one line naming the file."""
    path = str(Path(config["data"]))  # as from_file's own messages spell it
    try:
        data = from_file(
            path,
            target=config.get("target"),
            task=config.get("task"),
            seed=config["seed"],
            val_fraction=config["val_fraction"],
        )
    except (ValueError, TypeError) as error:  # from_arrays's own checks do not name the file
        if str(error).startswith(path):
            raise
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(f"{path}: {error}") from error
    if config.get("task") is None:  # told the task: its labels are what the user says
        _check_labels(path, config.get("target"), data)
    _check_architecture(recipe, data)
    return data


def build(config: Mapping[str, Any]) -> Job:
    """The job a config describes: data, net, loss, metrics and optimizer.

    With ``config["data"]`` (a ``.npz`` or ``.csv`` path, ``config["target"]`` its column)
    the data is that file (:func:`jaxnet.data.from_file`) instead of the recipe's dataset.
    ``config["plateau"]`` (an int) reduces the learning rate tenfold after that many epochs
    without improvement (:class:`jaxnet.train.ReduceOnPlateau`).

    A CSV target of whole numbers is read as class labels 0, 1, ... and refused when fewer
    than half of the classes up to its largest value occur (a price or a year is not a label),
    unless ``config["task"]`` says which task it is.
    The recipe's net must fit the file's features: an MLP takes ``(n, features)``, a cnn or
    a U-Net ``(n, height, width[, channels])`` (a U-Net's sides divisible by ``2**depth``), a
    recurrent net ``(n, steps, features)``; a transformer recipe takes no file.

    Raises:
      FileNotFoundError: if there is no data file.
      ValueError: if the config names an unknown recipe or holds a bad value, or a data file
        cannot be read, holds bad values or does not fit the recipe's net (one line, naming
        the file or the recipe).
      TypeError: if a data file's arrays are not numeric (one line naming the file).
    """
    recipe = get(config["recipe"])
    file = {k: config[k] for k in ("data", "target", "task") if config.get(k) is not None}
    plateau = {"plateau": config["plateau"]} if config.get("plateau") is not None else {}
    config = make_config(recipe.name, **{k: config[k] for k in recipe.defaults if k in config})
    config |= plateau
    if "data" in file:  # the user's own file instead of the recipe's dataset
        config |= file | {"dataset": None}
        data = _file_data(recipe, config)
    else:
        data = load(config["dataset"], seed=config["seed"], val_fraction=config["val_fraction"])
    classify = data.task == "classification"
    out = data.num_classes if classify and data.num_classes else data.y_train.shape[-1]
    net = _build_net(recipe.architecture, config, data, out)
    loss = losses.softmax_cross_entropy if classify else losses.mse
    metric_fns = {"accuracy": metrics.accuracy} if classify else {}
    transformation = optimizer(config["optimizer"], learning_rate=config["lr"])
    baselines = {}
    if data.name == "temperature_forecast":  # tomorrow = today: what a forecast must beat
        baselines["persistence test_loss"] = persistence_mse(data)
    return Job(config, net, data, loss, metric_fns, transformation, baselines)


def grid(
    recipe: str,
    *,
    learning_rates: Sequence[float],
    seeds: int = 1,
    widths: Sequence[int] | None = None,
    depths: Sequence[int] | None = None,
    run_dir: Any = None,
    progress: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Sweep a recipe: every width × depth as its own program, every η × seed vmapped in it
    (:func:`jaxnet.sweep.fit_many`).

    Args:
      recipe: a recipe name (``jaxnet recipes``).
      learning_rates: the η values.
      seeds: how many seeds (0, 1, ..., seeds - 1).
      widths, depths: the architectures; default the recipe's.
      run_dir: if given, writes ``config.json``, ``results.jsonl`` (one line per member) and
        ``sweep.png`` there.
      progress: show progress bars.
      **overrides: other recipe settings (``epochs``, ``batch_size``, ``optimizer``, ...).

    Returns:
      One dict per member: width, depth, lr, seed, the final history row, and the step it
      diverged at (or None).

    Raises:
      ValueError: for an unknown recipe or a bad setting (checked before any training).
    """
    from jaxnet.runs.folder import RunFolder

    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"seeds must be a positive int (how many), got {seeds!r}")
    base = make_config(recipe, **overrides)
    shapes = list(itertools.product(widths or [base["width"]], depths or [base["depth"]]))
    configs = [make_config(recipe, **{**overrides, "width": w, "depth": d}) for w, d in shapes]
    sweep.check_members(learning_rates, list(range(seeds)))
    folder = None if run_dir is None else RunFolder(run_dir)
    if folder is not None:
        folder.write_config(
            {
                **base,
                "sweep": {
                    "lr": list(learning_rates),
                    "seeds": seeds,
                    "width": [w for w, _ in shapes],
                    "depth": [d for _, d in shapes],
                },
            }
        )
    rows: list[dict[str, Any]] = []
    for config in configs:
        job = build(config)
        result = sweep.fit_many(
            job.net,
            job.data,
            optimizer=OPTIMIZERS[config["optimizer"]],
            learning_rates=learning_rates,
            seeds=range(seeds),
            loss=job.loss,
            metrics=job.metrics,
            epochs=config["epochs"],
            batch_size=config["batch_size"],
            progress=progress,
        )
        for member, history, diverged in zip(
            result.members, result.history, result.diverged_at, strict=True
        ):
            rows.append(
                {
                    "width": config["width"],
                    "depth": config["depth"],
                    "lr": member.learning_rate,
                    "seed": member.seed,
                    **history[-1],
                    "diverged_at": diverged,
                    "program_seconds": result.seconds,
                }
            )
    if folder is not None:
        folder.write_jsonl("results.jsonl", rows)
        from jaxnet.plot import plot_sweep

        plot_sweep(rows, folder.path / "sweep.png", title=recipe)
    return rows
