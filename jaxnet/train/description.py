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
from jaxnet.train.freeze import Trainable
from jaxnet.train.model import outputs_of
from jaxnet.train.optimizers import describe_optimizer

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
    data: Dataset,
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
        "outputs": outputs_of(loss, data.task),
        "loss": _name_in(losses, loss),
        "metrics": {name: _name_in(metrics_module, fn) for name, fn in metrics.items()},
        "optimizer": describe_optimizer(optimizer),
        "trainable": trainable if trainable is None or isinstance(trainable, str) else False,
        "data": None if data.origin is None else dict(data.origin),
    }
    return entry
