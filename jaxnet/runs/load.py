"""A trained model back from its run folder, with no code from the user.

:func:`load` rebuilds what ``model.json`` describes (see :mod:`jaxnet.runs.description`) and
restores a checkpoint into it; :func:`load_params` reads just the parameters and layer state,
for any run, whatever its optimizer.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

from jaxnet.config import ConfigError, from_config
from jaxnet.core import Layer, Params, State
from jaxnet.data import Preprocessing
from jaxnet.data.preprocessing import TreePreprocessing
from jaxnet.data.trees import batched_shape
from jaxnet.optim.ema import ema_params
from jaxnet.optim.optimizers import rebuild_optimizer
from jaxnet.optim.plateau import ReduceOnPlateau
from jaxnet.optim.state import TrainState
from jaxnet.optim.update import Update
from jaxnet.optim.wrapped import wrapped_optimizer
from jaxnet.runs.checkpoint import Checkpointer
from jaxnet.runs.description import check_description
from jaxnet.runs.folder import MODEL, RunFolder, RunFolderError
from jaxnet.runs.model import Model
from jaxnet.validate import one_of


@dataclasses.dataclass(frozen=True, eq=False)
class LoadedRun:
    """A run rebuilt from its folder.

    Attributes:
      net: the network, rebuilt from model.json.
      params: the trained parameters of the restored checkpoint.
      state: its layer state (BatchNorm statistics; ``{}`` for most nets).
      model: net, params, state and preprocessing: :meth:`predict` and friends.
      train_state: the whole train state (optimizer state included) to train on, when the
        optimizer was made by name (:func:`jaxnet.train.optimizer`, as recipes do) and
        ``trainable`` was None or a glob; None otherwise.
      step: the checkpoint restored: its epoch (``fit`` numbers checkpoints by epoch); the
        same as :attr:`epoch`, the clearer name.
      config: config.json.
      description: model.json.
      history: the rows of metrics.jsonl.
      run_dir: the run folder.
    """

    net: Layer
    params: Params
    state: State
    model: Model
    train_state: TrainState | None
    step: int
    config: dict[str, Any]
    description: dict[str, Any]
    history: list[dict[str, Any]]
    run_dir: pathlib.Path

    @property
    def epoch(self) -> int:
        """The epoch of the checkpoint restored (``fit`` numbers its checkpoints by epoch;
        ``train_state.step`` counts updates)."""
        return self.step

    def predict(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """:meth:`jaxnet.train.Model.predict` on raw inputs."""
        return self.model.predict(x, batch_size=batch_size)

    def predict_proba(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """:meth:`jaxnet.train.Model.predict_proba` on raw inputs."""
        return self.model.predict_proba(x, batch_size=batch_size)

    def predict_outputs(self, x: npt.ArrayLike, *, batch_size: int = 1024) -> np.ndarray:
        """:meth:`jaxnet.train.Model.predict_outputs` on raw inputs."""
        return self.model.predict_outputs(x, batch_size=batch_size)


def _pick_step(checkpoints: Checkpointer, step: int | None, which: str, folder: RunFolder) -> int:
    one_of(which, ("latest", "best"), "which", owner="load")
    if step is None:
        step = checkpoints.pick_step(which)  # a damaged newest is refused, never skipped
    if step is None:
        raise FileNotFoundError(f"run folder {str(folder.path)!r} has no checkpoint")
    return step


def _rebuild_net(description: Mapping[str, Any], folder: RunFolder) -> Layer:
    file = folder.path / MODEL
    if description.get("net") is None:
        reason = description.get("net_error", "it holds no net config")
        raise RunFolderError(
            f"{file}: the net cannot be rebuilt: {reason}. Its parameters are still there: "
            "jn.train.load_params(run_dir)"
        )
    try:
        return from_config(description["net"])
    except ConfigError as error:
        raise RunFolderError(f"{file}: {error}") from None


def _read_description(folder: RunFolder, config: Mapping[str, Any]) -> dict[str, Any]:
    """model.json, checked; a run of a recipe written before model.json existed is told how
    to rebuild it."""
    if not (folder.path / MODEL).is_file() and "recipe" in config:
        raise FileNotFoundError(
            f"run folder {str(folder.path)!r} has no model.json (a recipe run written "
            "before run folders held one); rebuild it with job = jn.recipes.build(config) and "
            "RunFolder(run_dir).checkpointer().restore(job.initial_state())"
        )
    description = folder.read_model()
    check_description(description, folder.path / MODEL)
    return description


def _model(
    net: Layer,
    params: Params,
    state: State,
    preprocessing: Preprocessing | TreePreprocessing,
    description: Mapping[str, Any],
) -> Model:
    names = description.get("target_names")
    classes = tuple(names) if names and description.get("task") == "classification" else None
    return Model(net, params, state, preprocessing, description["outputs"], classes)


def load(
    run_dir: str | os.PathLike[str], *, step: int | None = None, which: str = "latest"
) -> LoadedRun:
    """Rebuild a run's net from model.json and restore a checkpoint into it.

    Works for any net built from jaxnet's layers (and registered ones), by a recipe or by
    hand; the user's code is not needed. The optimizer state is restored too when the
    optimizer was made by name (:func:`jaxnet.train.optimizer`) and ``trainable`` was None or
    a glob; otherwise ``train_state`` is None and the parameters and layer state are restored
    alone.

    Args:
      run_dir: the run folder.
      step: the checkpoint (epoch) to restore; default by ``which``.
      which: ``"latest"`` or ``"best"`` (by the monitored metric).

    Raises:
      FileNotFoundError: if the folder, its config, its model.json or its checkpoints are
        missing.
      RunFolderError: if model.json is damaged or its net cannot be rebuilt (the reason is
        what ``to_config`` said when the run was trained).
      CheckpointError: if the checkpoint is damaged.

    Example:
      >>> import jaxnet as jn, optax
      >>> data = jn.data.load("xor")
      >>> result = jn.train.fit(jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(2)), data,
      ...     optimizer=optax.adam(0.05), loss=jn.losses.softmax_cross_entropy, epochs=2,
      ...     run_dir="xor-run", progress=False)
      >>> run = jn.train.load("xor-run")
      >>> raw = data.x_test[:3] * data.feature_std + data.feature_mean  # raw inputs, unscaled
      >>> run.predict(raw).shape, run.step
      ((3,), 2)
    """
    folder = RunFolder(run_dir)
    config = folder.read_config()
    description = _read_description(folder, config)
    net = _rebuild_net(description, folder)
    preprocessing = Preprocessing.from_json(description["preprocessing"])  # checked above
    checkpoints = folder.checkpointer()
    step = _pick_step(checkpoints, step, which, folder)
    input_shape = batched_shape(preprocessing.feature_shape)
    train_state = _restore_train_state(
        checkpoints, net, input_shape, description, config, step, folder.path / MODEL
    )
    if train_state is None:
        params = checkpoints.restore_tree("params", step)
        state = checkpoints.restore_tree("state", step)
    else:
        params, state = train_state.params, train_state.state
    if config.get("evaluate_ema"):  # the run was evaluated (and chosen) by the average
        params = _average(checkpoints, train_state, config, step)
    model = _model(net, params, state, preprocessing, description)
    history = folder.read_metrics()
    return LoadedRun(
        net, params, state, model, train_state, step, config, description, history, folder.path
    )


def _restore_train_state(
    checkpoints: Checkpointer,
    net: Layer,
    input_shape: tuple[int | None, ...],
    description: Mapping[str, Any],
    config: Mapping[str, Any],
    step: int,
    file: pathlib.Path,
) -> TrainState | None:
    """The whole train state, when the optimizer (and the trainable selection) can be made
    again; None otherwise. ``file`` (model.json) is named in errors."""
    try:
        optimizer = rebuild_optimizer(description["optimizer"])
    except (TypeError, ValueError) as error:
        raise RunFolderError(f"{file}: optimizer: {error}") from None
    trainable = description.get("trainable")
    if optimizer is None or trainable is False:
        return None
    update = Update(
        ema=config.get("ema"),
        reduce_on_plateau=ReduceOnPlateau() if config.get("reduce_on_plateau") else None,
    )  # the optimizer's wrappers, as fit made them: their state is in the checkpoint
    wrapped = wrapped_optimizer(optimizer, trainable, config.get("precision"), update)
    key = jax.random.key(config.get("seed", 0))
    fresh = TrainState.create(net, wrapped, input_shape, key=key)
    return checkpoints.restore(fresh, step)


def load_params(
    run_dir: str | os.PathLike[str], *, step: int | None = None, which: str = "latest"
) -> tuple[Params, State]:
    """The trained parameters and layer state of a run, whatever its optimizer and net.

    Reads them straight from the checkpoint by their paths (``params/dense_0/w``), so it needs
    neither model.json nor the optimizer: also for a net written by hand, to restore into a
    net you build again (``jn.train.Checkpointer.restore_partial`` does the same into a tree of
    your own, reporting what it skipped).

    Args:
      run_dir: the run folder.
      step: the checkpoint (epoch) to read; default by ``which``.
      which: ``"latest"`` or ``"best"``.

    Returns:
      ``(params, state)``: nested dicts of arrays, as ``net.init`` makes them.

    Raises:
      FileNotFoundError: if the folder holds no checkpoint.
      CheckpointError: if the checkpoint is damaged.
    """
    folder = RunFolder(run_dir)
    if not folder.path.is_dir():
        raise FileNotFoundError(f"run folder {str(folder.path)!r} does not exist")
    checkpoints = folder.checkpointer()
    step = _pick_step(checkpoints, step, which, folder)
    return checkpoints.restore_tree("params", step), checkpoints.restore_tree("state", step)


def _average(
    checkpoints: Checkpointer, train_state: TrainState | None, config: Mapping[str, Any], step: int
) -> Any:
    """The moving average of the weights a run with ``Update(ema=..., evaluate_ema=True)``
    saved: from the restored optimizer state, or read by its path (``opt_state/ema``, under
    the loss scale's ``inner`` for float16) when the optimizer cannot be made again."""
    if train_state is not None:
        return ema_params(train_state.opt_state)
    inner = "inner/" if config.get("precision") == "float16" else ""
    return checkpoints.restore_tree(f"opt_state/{inner}ema", step)
