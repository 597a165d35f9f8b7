"""What a run folder's ``model.json`` holds, so that the model can leave the library.

``fit(run_dir=...)`` writes it beside ``config.json``: the net's config
(:func:`jaxnet.to_config`), the preprocessing fitted on the training data, what the outputs
are (logits, values), the loss and metrics by name where they are jaxnet's, the optimizer
where it was made by name (:func:`jaxnet.train.optimizer`), and where the data came from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import optax

from jaxnet import losses
from jaxnet import metrics as metrics_module
from jaxnet.config import ConfigError, to_config
from jaxnet.core import Layer
from jaxnet.data import Dataset
from jaxnet.data.stream import Stream
from jaxnet.optim.freeze import Trainable
from jaxnet.optim.optimizers import describe_optimizer
from jaxnet.runs.model import outputs_of

FORMAT = "jaxnet.run-model/1"
"""The ``format`` of the model.json this version writes and reads."""


def _name_in(module: Any, fn: Any) -> str | None:
    """The public name ``fn`` has in ``module`` (``"mse"`` in ``jn.losses``), or None."""
    for name in getattr(module, "__all__", ()):
        if getattr(module, name, None) is fn:
            return str(name)
    return None


def model_entry(
    net: Layer,
    data: Dataset | Stream,
    *,
    loss: Callable[..., Any],
    metrics: Mapping[str, Callable[..., Any]],
    optimizer: optax.GradientTransformation,
    trainable: Trainable,
) -> dict[str, Any]:
    """What ``fit`` writes to model.json. A net that cannot be described (a layer written by
    hand and not registered) still trains; model.json then holds ``"net": null`` and the
    reason, which :func:`load` reports."""
    entry: dict[str, Any] = {"format": FORMAT}
    try:
        entry["net"] = to_config(net)
    except ConfigError as error:
        entry |= {"net": None, "net_error": str(error)}
    entry |= {
        "preprocessing": data.preprocessing.to_json(),
        "task": data.task,
        "num_classes": data.num_classes,
        "target_names": None if data.target_names is None else list(data.target_names),
        "feature_names": _feature_names(data),
        "outputs": outputs_of(loss, data.task),
        "loss": _name_in(losses, loss),
        "metrics": {name: _name_in(metrics_module, fn) for name, fn in metrics.items()},
        "optimizer": describe_optimizer(optimizer),
        "trainable": trainable if trainable is None or isinstance(trainable, str) else False,
        "data": None if data.origin is None else dict(data.origin),
    }
    return entry


def _feature_names(data: Dataset | Stream) -> list[str] | None:
    """The names of the feature columns of a file run (its CSV header) or of
    ``from_arrays(..., feature_names=)``, for ``predict`` to read a CSV by name; None for an
    embedded set (its names are documentation, not columns of a user's file), for images and
    for trees."""
    origin = getattr(data, "origin", None)
    if origin is not None and not origin.get("file"):  # an embedded set: not a user's columns
        return None
    names = getattr(data, "feature_names", None)
    shape = data.preprocessing.feature_shape
    if names is None or not isinstance(shape, tuple) or shape != (len(names),):
        return None
    return list(names)


_ORIGIN_KEYS = {"name", "seed", "test_fraction", "val_fraction", "standardize"}
_ORIGIN_KEYS |= {"file", "target", "task", "sha256"}  # jn.data.from_file's


def check_description(entry: Mapping[str, Any], file: Any) -> None:
    """Refuse a model.json that this version did not write or that was edited into something
    :func:`jaxnet.runs.load` cannot read, naming the file and the key.

    Raises:
      RunFolderError: ``run/model.json: outputs must be one of (...), got 'probs'``.
    """
    from jaxnet.data.preprocessing import Preprocessing
    from jaxnet.runs.folder import RunFolderError
    from jaxnet.runs.model import OUTPUTS

    def bad(key: str, need: str) -> RunFolderError:
        return RunFolderError(f"{file}: {key} must be {need}, got {entry.get(key)!r}")

    if entry.get("format") != FORMAT:
        raise bad("format", repr(FORMAT))
    for key, kind, need in (
        ("net", dict, "a net config or null"),
        ("preprocessing", dict, "an object"),
        ("optimizer", dict, "an object"),
        ("metrics", dict, "an object"),
    ):
        value = entry.get(key)
        if not isinstance(value, kind) and not (key == "net" and value is None):
            raise bad(key, need)
    if entry.get("outputs") not in OUTPUTS:
        raise bad("outputs", f"one of {OUTPUTS}")
    if entry.get("task") not in ("classification", "regression"):
        raise bad("task", "'classification' or 'regression'")
    for key in ("target_names", "feature_names"):
        names = entry.get(key)
        if names is not None and not (
            isinstance(names, list) and all(isinstance(n, str) for n in names)
        ):
            raise bad(key, "a list of strings or null")
    if entry.get("loss") is not None and _known(losses, entry.get("loss")) is None:
        raise bad("loss", "the name of a function of jn.losses or null")
    for name, fn in entry["metrics"].items():
        if fn is not None and _known(metrics_module, fn) is None:
            raise RunFolderError(f"{file}: metrics: {name!r} names no function of jn.metrics")
    trainable = entry.get("trainable")
    if not (trainable is None or trainable is False or isinstance(trainable, str)):
        raise bad("trainable", "a glob, null or false")
    data = entry.get("data")
    if data is not None and not (isinstance(data, dict) and set(data) <= _ORIGIN_KEYS):
        raise bad("data", f"null or an object with keys among {sorted(_ORIGIN_KEYS)}")
    try:
        Preprocessing.from_json(entry["preprocessing"])
    except ValueError as error:
        raise RunFolderError(f"{file}: {error}") from None


def _known(module: Any, name: Any) -> Callable[..., Any] | None:
    """The public function ``name`` of ``module``, or None."""
    if isinstance(name, str) and name in getattr(module, "__all__", ()):
        return getattr(module, name)
    return None
