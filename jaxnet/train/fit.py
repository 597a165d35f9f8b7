"""``fit``: the convenience loop over the pure step, fused, guarded and checkpointed.

Each epoch is one compiled call: the data already lives on the device, the epoch's shuffle is
drawn with ``jax.random`` inside the call, every step of the epoch runs in one ``lax.scan``
with the state's buffers donated, and the validation and test splits are evaluated at the end
of the same call. Model selection (the best checkpoint, early stopping) looks at the validation
split by default and never at the test split unless asked for it by name.
The host syncs once per epoch, to report progress, write ``metrics.jsonl`` and save a
checkpoint. (On CPU, a net with convolutions runs its steps as one call each instead, with the
data still on the device: see :func:`jaxnet.train.make_stepwise_epoch`.)
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from jaxnet.core import Array, Layer
from jaxnet.data import Dataset
from jaxnet.data.ondisk import OnDisk
from jaxnet.data.stream import Stream
from jaxnet.data.trees import batch_spec, batched_shape, tree_map
from jaxnet.distributed import (
    Mesh,
    Rules,
    batch_sharding,
    check_batch_size,
    place,
    replicate,
    state_shardings,
)
from jaxnet.metrics import monitor_mode
from jaxnet.optim.ema import ema_params
from jaxnet.optim.freeze import Trainable
from jaxnet.optim.optimizers import describe_optimizer
from jaxnet.optim.plateau import lr_scale, set_lr_scale
from jaxnet.optim.precision import check_precision
from jaxnet.optim.state import TrainState, step_key
from jaxnet.optim.update import Update
from jaxnet.optim.wrapped import wrapped_optimizer
from jaxnet.runs.description import model_entry
from jaxnet.runs.loggers import Logger, check_logger
from jaxnet.runs.recorder import Checkpointing, Recorder
from jaxnet.train.checks import check_arguments, check_outputs_fit_data, check_outputs_fit_stream
from jaxnet.train.epoch import (
    contains_convolution,
    epoch_batches,
    make_epoch,
    make_stepwise_epoch,
)
from jaxnet.train.guard import explain_nonfinite
from jaxnet.train.profile import Profiler, check_profile
from jaxnet.train.retrace import watch_retraces
from jaxnet.train.step import LossFn, MetricFns, make_eval_step, make_train_step
from jaxnet.train.streaming import StreamEngine, Streaming, pass_length
from jaxnet.validate import checked_fields, non_negative, one_of, positive_int

DEFAULT_BATCH_SIZE = 128
"""Examples per step when ``fit`` is not told (a stream's batches set their own)."""

Callback = Callable[[dict[str, Any], TrainState], bool | None]
"""``callback(row, train_state)`` after each epoch; returning True stops training."""


@dataclasses.dataclass(frozen=True)
class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    Args:
      monitor: a history key such as ``"val_loss"`` or ``"val_accuracy"``; by default (None)
        ``fit``'s own monitor (validation metrics when the data has a validation split).
      patience: epochs without improvement to tolerate, a positive int.
      mode: ``"min"`` (lower is better) or ``"max"``; by default ``"max"`` for accuracies and
        ``"min"`` otherwise.
      min_delta: the smallest change that counts as improvement, >= 0.
    """

    monitor: str | None = None
    patience: int = 5
    mode: str | None = None
    min_delta: float = 0.0

    def __post_init__(self) -> None:
        patience = positive_int(self.patience, "patience", owner="EarlyStopping")
        one_of(self.mode, (None, "min", "max"), "mode", owner="EarlyStopping")
        min_delta = non_negative(self.min_delta, "min_delta", owner="EarlyStopping")
        checked_fields(self, patience=patience, min_delta=min_delta)

    def should_stop(self, history: Sequence[Mapping[str, Any]]) -> bool:
        """True once the last ``patience`` epochs brought no improvement on the best before."""
        if len(history) <= self.patience:
            return False
        if self.monitor is None:
            raise ValueError(
                "EarlyStopping: monitor is None (fit fills in its own monitor); give "
                "monitor='val_loss' or another history key to call should_stop directly"
            )
        monitor = self.monitor
        sign = 1.0 if _mode_for(monitor, self.mode) == "max" else -1.0
        values = [sign * float(row[monitor]) for row in history]
        best_before = max(values[: -self.patience])
        return max(values[-self.patience :]) <= best_before + self.min_delta


class FitResult(NamedTuple):
    """What ``fit`` returns.

    Attributes:
      train_state: the final state (the last good one if training stopped early).
      history: one dict per epoch: ``epoch``, ``step``, ``seconds``, ``train_<metric>`` (the mean
        over the epoch's steps), ``val_<metric>`` (after the epoch, when there is a validation
        split) and ``test_<metric>`` (after the epoch).
      run_dir: the run folder, or None.
      stopped: ``"completed"``, ``"early_stopping"``, ``"callback"`` or ``"interrupted"``.
    """

    train_state: TrainState
    history: list[dict[str, Any]]
    run_dir: pathlib.Path | None
    stopped: str


def _mode_for(monitor: str, mode: str | None) -> str:
    return mode or monitor_mode(monitor)


def default_monitor(metric_names: Sequence[str], has_validation: bool) -> str:
    """What ``fit`` picks the best checkpoint and stops early on when not told: the validation
    accuracy (with an ``accuracy`` metric) or loss, or the training ones without a validation
    split. Never a test metric: choosing on the test split tunes the model to it."""
    split = "val" if has_validation else "train"
    return f"{split}_accuracy" if "accuracy" in metric_names else f"{split}_loss"


def history_keys(
    metric_names: Sequence[str], has_validation: bool, has_test: bool = True
) -> list[str]:
    """The metric keys of every history row: ``train_*``, then ``val_*``, then ``test_*``."""
    splits = ["train", *(["val"] if has_validation else []), *(["test"] if has_test else [])]
    return [f"{split}_{m}" for split in splits for m in ("loss", *metric_names)]


def _held_out(data: Dataset | Stream) -> tuple[bool, bool]:
    """Whether ``data`` has a validation split, and a test split."""
    if isinstance(data, Stream):
        return data.val is not None, data.test is not None
    return data.num_val > 0, data.num_test > 0


def initial_state(
    net: Layer,
    optimizer: optax.GradientTransformation,
    data: Dataset,
    *,
    seed: int = 0,
    trainable: Trainable = None,
    precision: str | None = None,
    update: Update | None = None,
) -> TrainState:
    """The state ``fit`` starts from (same seed, same params), its optimizer wrapped by
    ``trainable``, ``update`` (a moving average) and ``precision``; a restore target for the
    run's checkpoints."""
    input_shape = batched_shape(data.feature_shape)
    optimizer = wrapped_optimizer(optimizer, trainable, precision, update)
    return TrainState.create(net, optimizer, input_shape, key=jax.random.key(seed))


def _eval_step(
    net: Layer, loss: LossFn, metrics: MetricFns, precision: str | None, update: Update
) -> Callable[..., dict[str, Array]]:
    """The evaluation of the held-out splits: of the parameters, or of their moving average
    with ``update.evaluate_ema``."""
    eval_step = make_eval_step(net, loss, metrics=metrics, precision=precision)
    if not update.evaluate_ema:
        return eval_step

    def of_the_average(train_state: TrainState, batch: Any) -> dict[str, Array]:
        return eval_step(train_state._replace(params=ema_params(train_state.opt_state)), batch)

    return of_the_average


def evaluate(
    eval_step: Callable[[TrainState, Any], dict[str, Array]],
    train_state: TrainState,
    x: jax.typing.ArrayLike,
    y: jax.typing.ArrayLike,
    *,
    batch_size: int = 4096,
) -> dict[str, float]:
    """Metrics over all of ``(x, y)``, in chunks of ``batch_size``, weighted by chunk size:
    :func:`evaluate_traced` compiled as one call, its results as Python floats."""
    xs = tree_map(jnp.asarray, x)  # x may be a tuple or dict of arrays
    metrics = _evaluate_compiled(eval_step, train_state, xs, jnp.asarray(y), batch_size)
    return {name: float(value) for name, value in jax.device_get(metrics).items()}


class _StopRequest:
    """Set by the first Ctrl-C during ``fit``: finish the epoch, save, stop."""

    requested = False


@contextmanager
def _graceful_interrupt(stop: _StopRequest) -> Iterator[None]:
    """Turn the first SIGINT into a stop request; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        stop.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second one raises

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_title(config: Mapping[str, Any] | None, data: Any) -> str:
    """The title of a run's plot and progress bar: its recipe, and the file it trains on
    (``digits-mlp on diabetes.csv``); empty for neither (the run folder's name is used)."""
    recipe = str((config or {}).get("recipe", ""))
    file = (getattr(data, "origin", None) or {}).get("file")
    if not file:
        return recipe
    name = pathlib.Path(file).name
    return f"{recipe} on {name}" if recipe else name


def _check_fused(fused: Any) -> bool | None:
    """``fused`` as a bool (NumPy's too) or None; anything else is a TypeError."""
    if fused is None:
        return None
    if not isinstance(fused, bool | np.bool_):
        raise TypeError(f"fit: fused must be True, False or None, got {fused!r}")
    return bool(fused)


def _check_data(data: Any, batch_size: Any, seed: int) -> Dataset | Stream:
    """``data`` as fit trains on it: an on-disk dataset becomes its stream (each process
    reading its own shard of every split, ``batch_size / processes`` rows a batch)."""
    if isinstance(data, OnDisk):
        processes = jax.process_count()
        batch_size = positive_int(
            DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size", owner="fit"
        )
        if batch_size % processes:
            raise ValueError(
                f"fit: batch_size={batch_size} must divide among the {processes} processes"
            )
        shard = (jax.process_index(), processes)
        return data.stream(batch_size // processes, seed=seed, shard=shard)
    if not isinstance(data, Dataset | Stream):
        raise TypeError(
            f"fit: data must be a jaxnet.data.Dataset (use jn.data.load(name) or "
            f"jn.data.from_arrays(x, y)) or a jaxnet.data.Stream of batches (jn.data.stream), "
            f"got {type(data).__name__}"
        )
    return data


def _check_fit_args(
    data: Dataset | Stream, epochs: Any, batch_size: Any, monitor: str, names: list[str]
) -> int:
    """The checks of the data's arguments; returns the batch size (a stream's own)."""
    positive_int(epochs, "epochs", owner="fit")
    if isinstance(data, Stream):
        global_batch = data.batch_size * jax.process_count()  # each process streams its part
        if batch_size is not None and batch_size != global_batch:
            raise ValueError(
                f"fit: batch_size={batch_size!r}, but the stream's batches hold "
                f"{data.batch_size} examples; leave batch_size out for a stream"
            )
        batch_size = global_batch
    batch_size = positive_int(
        DEFAULT_BATCH_SIZE if batch_size is None else batch_size, "batch_size", owner="fit"
    )
    if isinstance(data, Dataset) and batch_size > data.num_train:
        raise ValueError(
            f"fit: batch_size={batch_size} is larger than the {data.num_train} training examples"
        )
    if monitor not in names:
        raise ValueError(f"fit: cannot monitor {monitor!r}; the history has {names}")
    return batch_size


class _Engine(NamedTuple):
    """The compiled pieces of a fit and where its arrays live."""

    run_epoch: Callable[..., Any]  # (train_state, epoch) -> (state, metrics, finite, evals)
    batch_at: Callable[[TrainState, int, int], Any]  # (state, epoch, index) -> a step's batch
    place: Callable[[TrainState], TrainState]
    position: Callable[[int], dict[str, Any] | None] = lambda epochs: None  # of the input


def evaluate_traced(
    eval_step: Callable[..., dict[str, Array]],
    train_state: TrainState,
    x: Array,
    y: Array,
    chunk: int = 4096,
) -> dict[str, Array]:
    """:func:`evaluate` as traced code, to run inside the epoch's call: metrics over all of
    ``(x, y)`` in chunks of ``chunk`` (a ``lax.map`` over the full ones, then the rest),
    weighted by chunk size."""
    n = y.shape[0]  # x may be a tuple or dict of arrays with n rows each
    full, rest = divmod(n, chunk)
    parts = []
    if full:
        chunks = jax.tree.map(
            lambda a: a[: full * chunk].reshape(full, chunk, *a.shape[1:]), (x, y)
        )  # (full, chunk, ...)
        per_chunk = jax.lax.map(lambda batch: eval_step(train_state, batch), chunks)
        parts.append(jax.tree.map(lambda v: v.sum(0) * chunk, per_chunk))
    if rest:
        last = eval_step(train_state, jax.tree.map(lambda a: a[full * chunk :], (x, y)))
        parts.append(jax.tree.map(lambda v: v * rest, last))
    if not parts:
        return {}
    return jax.tree.map(lambda *v: sum(v) / n, *parts)


_evaluate_compiled = jax.jit(evaluate_traced, static_argnums=(0, 4))


def _runs_fused(
    fused: bool | None, net: Layer, train_state: TrainState, x: jax.ShapeDtypeStruct, mesh: Any
) -> bool:
    """``fused`` as given, or by default: fused everywhere except a net with convolutions on
    CPU, whose gradients XLA:CPU compiles 6-10x slower inside a loop (jax-ml/jax#12868)."""
    if fused is not None:
        return bool(fused)
    platform = (jax.devices()[0] if mesh is None else mesh.devices.flat[0]).platform
    if platform != "cpu":
        return True

    def forward(params: Any, state: Any, inputs: Any) -> Any:
        return net.apply(params, state, inputs, key=step_key(train_state), train=True)

    return not contains_convolution(forward, train_state.params, train_state.state, x)


def _compile(
    train_step: Any,
    eval_step: Callable[..., dict[str, Array]],
    batch_size: int,
    data: Dataset,
    mesh: Mesh | None,
    rules: Rules | None,
    fused: bool,
) -> _Engine:
    """Jit the epoch and the validation and test evaluations after it (buffers donated; a
    retrace warns with what changed, see :mod:`jaxnet.train.retrace`); put the data on the
    device(s). ``run_epoch`` returns the evaluations as ``{"val": {...}, "test": {...}}``."""
    arrays = (data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)
    sharding = None if mesh is None else batch_sharding(mesh, stacked=True)
    x_train, y_train, *held_out = (
        tuple(jax.device_put(a) for a in arrays) if mesh is None else replicate(arrays, mesh)
    )

    def evaluations(train_state: TrainState, *held_out: Array) -> dict[str, Any]:
        x_val, y_val, x_test, y_test = held_out
        return {
            "val": evaluate_traced(eval_step, train_state, x_val, y_val),
            "test": evaluate_traced(eval_step, train_state, x_test, y_test),
        }

    name = "fit's epoch"
    if fused:
        epoch = make_epoch(train_step, batch_size, batch_sharding=sharding)

        def epoch_then_evaluate(train_state: TrainState, *arrays: Array) -> Any:
            x, y, e, *held_out = arrays
            train_state, metrics, finite = epoch(train_state, x, y, e)
            return train_state, metrics, finite, evaluations(train_state, *held_out)

        jitted = jax.jit(watch_retraces(epoch_then_evaluate, name=name), donate_argnums=0)

        def run_epoch(train_state: TrainState, e: int) -> Any:
            return jitted(train_state, x_train, y_train, jnp.int32(e), *held_out)

    else:
        stepwise = make_stepwise_epoch(
            train_step, batch_size, batch_sharding=sharding, watch=f"{name}'s step"
        )
        evaluate_jitted = jax.jit(evaluations)

        def run_epoch(train_state: TrainState, e: int) -> Any:
            train_state, metrics, finite = stepwise(train_state, x_train, y_train, jnp.int32(e))
            return train_state, metrics, finite, evaluate_jitted(train_state, *held_out)

    def batch_at(train_state: TrainState, epoch: int, index: int) -> Any:
        """Batch ``index`` of ``epoch``'s shuffle, drawn again from the run's key."""
        xs, ys = epoch_batches(train_state.key, jnp.int32(epoch), x_train, y_train, batch_size)
        return tree_map(lambda a: a[index], xs), ys[index]  # xs may be a tuple or dict

    return _Engine(run_epoch, batch_at, _placer(mesh, rules))


def _placer(mesh: Mesh | None, rules: Rules | None) -> Callable[[TrainState], TrainState]:
    """How the state is laid out on the mesh (as it is without one)."""

    def place_state(train_state: TrainState) -> TrainState:
        if mesh is None:
            return train_state
        return place(train_state, state_shardings(train_state, mesh, rules))

    return place_state


def _compile_stream(
    train_step: Any,
    eval_step: Callable[..., dict[str, Array]],
    data: Stream,
    mesh: Mesh | None,
    rules: Rules | None,
    streaming: Streaming,
    start_epoch: int,
    on_steps: Callable[[int], Any],
    on_row: Callable[[dict[str, Any]], Any],
    start_position: dict[str, Any] | None,
) -> _Engine:
    """The streaming path's engine (:class:`jaxnet.train.streaming.StreamEngine`);
    ``on_steps(n)`` after each chunk of ``n`` steps (the progress bar), ``on_row(row)`` with
    each step row due inside an epoch (``Streaming.log_every`` / ``eval_every``)."""
    sharding = None if mesh is None else batch_sharding(mesh, stacked=True)
    engine = StreamEngine(
        data,
        train_step,
        eval_step,
        streaming,
        sharding=sharding,
        start_epoch=start_epoch,
        on_steps=on_steps,
        on_row=on_row,
        start_position=start_position,
    )
    return _Engine(
        engine.run_epoch,
        lambda state, epoch, index: engine.batch_at(index),
        _placer(mesh, rules),
        engine.position,
    )


def fit(
    net: Layer,
    data: Dataset | Stream | OnDisk,
    *,
    optimizer: optax.GradientTransformation,
    loss: LossFn,
    epochs: int = 10,
    batch_size: int | None = None,
    seed: int = 0,
    metrics: MetricFns | None = None,
    trainable: Trainable = None,
    monitor: str | None = None,
    early_stopping: EarlyStopping | None = None,
    callbacks: Sequence[Callback] = (),
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    checkpointing: Checkpointing | None = None,
    loggers: Sequence[Logger | str] = (),
    config: Mapping[str, Any] | None = None,
    precision: str | None = None,
    mesh: Mesh | None = None,
    rules: Rules | None = None,
    progress: bool = True,
    fused: bool | None = None,
    streaming: Streaming | None = None,
    update: Update | None = None,
    profile: tuple[int, int] | None = None,
) -> FitResult:
    """Train ``net`` on ``data`` for ``epochs`` epochs; evaluate on the validation and test
    splits after each.

    Args:
      net: the network; its input shape is ``(batch, *data.feature_shape)``.
      data: a :class:`jaxnet.data.Dataset` (in memory: put on the device once, shuffled
        there), or a :class:`jaxnet.data.Stream` of batches (:func:`jaxnet.data.stream`: read
        from the host while the device trains, in the stream's order), or a
        :class:`jaxnet.data.OnDisk` (memory-mapped features: streamed, reshuffled each epoch
        by ``seed``).
      optimizer: any optax transformation (``optax.sgd(η)`` is the lecture's ``u ← u − η∇L``).
      loss: ``loss(predictions, targets) -> scalar``.
      epochs: the number of passes over the training split, counted from epoch 0 even when
        resuming (``epochs=4, resume=True`` after 2 epochs trains 2 more).
      batch_size: examples per step (default 128); the remainder of each shuffle is left out
        of that epoch. A stream's batches set their own size: leave it out.
      seed: seeds initialization, shuffling and dropout; the same seed gives the same params.
      metrics: extra ``name -> fn(predictions, targets)``, e.g.
        ``{"accuracy": jn.metrics.accuracy}``.
      trainable: train only these params: a glob over paths (``"dense_1/*"``) or a predicate;
        the others stay frozen (an optax mask).
      monitor: the history key that picks the best checkpoint; by default ``val_accuracy``
        when an accuracy metric is given, else ``val_loss``; without a validation split
        (``val_fraction=0``) ``train_accuracy`` / ``train_loss``. A test metric is used only
        when named here: choosing on the test split tunes the model to it.
      early_stopping: stop when its monitored value stops improving (by default it monitors
        what ``monitor`` does).
      callbacks: ``callback(row, train_state)`` after each epoch; returning True stops.
      run_dir: where to write config.json, model.json (the net's config, preprocessing and
        optimizer, for :func:`jaxnet.runs.load`), metrics.jsonl, curves.png and checkpoints;
        None writes nothing. Every file is written atomically (see :mod:`jaxnet.atomic`).
      resume: continue from the newest checkpoint in ``run_dir`` that verifies (bit for bit
        the same as a run that never stopped); ``metrics.jsonl`` is cut back to its epoch.
        ``batch_size``, ``seed``, ``precision`` and ``update`` must be the run's (a
        ValueError names the first that differs); ``epochs`` counts from the run's start.
      checkpointing: cadence, retention and asynchronous writing of the checkpoints, a
        :class:`Checkpointing`; by default as often as the disk keeps up without slowing
        training, keeping 3 and the best.
      loggers: where else each history row goes: ``"csv"`` (metrics.csv), ``"tensorboard"``
        (event files in ``tensorboard/``, the ``tensorboard`` extra) in the run folder, or any
        object with ``log(step, scalars)`` and ``close()`` (:class:`jaxnet.train.Logger`).
      config: extra entries for config.json (recipes store their name and settings).
      precision: compute in ``"bfloat16"`` or ``"float16"`` (with dynamic loss scaling added to
        the optimizer), parameters and loss in float32; default float32.
      mesh: train data-parallel over a :func:`jaxnet.distributed.make_mesh` mesh: each step's
        batch is split along its ``data`` axis, gradients are reduced by XLA. With several
        processes (:func:`jaxnet.distributed.initialize`) only process 0 writes config,
        metrics and plots, and every process writes its shards of each checkpoint.
      rules: shard parameters (and their optimizer moments) along the mesh's ``model`` axis by
        path, e.g. ``{"dense_*/w": PartitionSpec(None, "model")}``; others are replicated.
      progress: show a tqdm progress bar on stderr.
      fused: run each epoch's steps in one compiled ``lax.scan`` (True) or as one compiled
        call per step (False, see :func:`jaxnet.train.make_stepwise_epoch`); both keep the data
        on the device and sync the host once per epoch. By default (None) fused, except for a
        net with convolutions on CPU, where XLA compiles the loop 6-10x slower.
      update: how each update is made, a :class:`jaxnet.train.Update`: gradient
        accumulation over micro-batches (``Update(accumulate=4)``), a moving average of the
        weights (``Update(ema=0.999)``) and whether the held-out splits evaluate it, and a
        learning rate reduced on a plateau (``Update(reduce_on_plateau=ReduceOnPlateau())``).
      profile: ``(first_step, last_step)``: trace the epochs that run those train steps with
        ``jax.profiler`` into ``<run_dir>/profile`` (TensorBoard's profiler or Perfetto; see
        :mod:`jaxnet.train.profile`); needs ``run_dir``.
      streaming: how a stream is consumed, a :class:`jaxnet.train.Streaming`: steps per
        compiled call, chunks prefetched, and the step rows reported inside an epoch
        (``log_every`` / ``eval_every`` steps: to the progress bar, ``steps.jsonl`` and the
        loggers' ``log_steps``); only for a ``Stream`` or an ``OnDisk``.

    Returns:
      A :class:`FitResult`.

    Raises:
      NonFiniteError: when a loss or gradient goes non-finite; names the step and the first
        layer whose output or gradient did, and keeps the last good checkpoint.
      ValueError, TypeError: for bad arguments, before anything is compiled.

    Ctrl-C finishes the current epoch, saves a checkpoint and returns (``stopped ==
    "interrupted"``); a second Ctrl-C interrupts at once.
    """
    check_arguments(optimizer, loss, metrics, seed)
    profile = check_profile(profile, run_dir)
    data = _check_data(data, batch_size, seed)
    metric_fns = dict(metrics or {})
    has_validation, has_test = _held_out(data)
    names = history_keys(list(metric_fns), has_validation, has_test)
    monitor = monitor or default_monitor(list(metric_fns), has_validation)
    batch_size = _check_fit_args(data, epochs, batch_size, monitor, names)
    if isinstance(data, Stream):
        data = check_outputs_fit_stream(net, data, loss)
    else:
        check_outputs_fit_data(net, data, loss)
    streaming = _check_streaming(streaming, data)
    update = _check_update(update, batch_size, mesh)
    fused = _check_fused(fused)
    update = _plateau_monitor(update, monitor, names)
    if early_stopping is not None and early_stopping.monitor is None:
        early_stopping = dataclasses.replace(early_stopping, monitor=monitor)
    if early_stopping is not None and early_stopping.monitor not in names:
        raise ValueError(
            f"fit: early_stopping cannot monitor {early_stopping.monitor!r}; "
            f"the history has {names}"
        )

    description = None
    if run_dir is not None:
        description = model_entry(
            net, data, loss=loss, metrics=metric_fns, optimizer=optimizer, trainable=trainable
        )
    base_lr = _base_learning_rate(optimizer)
    optimizer = wrapped_optimizer(optimizer, trainable, precision, update)
    settings = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "monitor": monitor}
    settings["precision"] = check_precision(precision)
    if update.accumulate > 1:
        settings["accumulate"] = update.accumulate
    if update.ema is not None:  # jn.train.load wraps the optimizer the same way
        settings |= {"ema": update.ema, "evaluate_ema": update.evaluate_ema}
    if update.reduce_on_plateau is not None:
        settings["reduce_on_plateau"] = dataclasses.asdict(update.reduce_on_plateau)
    if mesh is not None:
        check_batch_size(batch_size, mesh)
        settings["devices"] = mesh.devices.size
    run = Recorder(
        run_dir,
        {**settings, **(config or {})},
        resume=resume,
        checkpointing=_check_checkpointing(checkpointing),
        mode=_mode_for(monitor, None),
        loggers=_check_loggers(loggers, run_dir),
        step_rows=bool(streaming.periods),
        title=run_title(config, data),
        model=description,
    )
    stop, stopped = _StopRequest(), "completed"
    with run:  # on the way out, every write has completed or been rolled back
        run.warm_up()  # orbax and matplotlib load in the writer thread while init compiles
        fresh = TrainState.create(
            net, optimizer, batched_shape(data.feature_shape), key=jax.random.key(seed)
        )
        train_state, history = run.start(fresh)
        train_step = make_train_step(
            net,
            loss,
            optimizer,
            metrics=metric_fns,
            precision=precision,
            accumulate=update.accumulate,
        )
        bar = _progress_bar(data, epochs, history, progress, run.title or net.name)
        eval_step = _eval_step(net, loss, metric_fns, precision, update)
        if isinstance(data, Stream):
            engine = _compile_stream(
                train_step,
                eval_step,
                data,
                mesh,
                rules,
                streaming,
                len(history),
                bar.update,
                lambda row: _step_row(row, run, bar),
                run.resumed_extra,
            )
        else:
            x = batch_spec(data.x_train, batch_size)
            fused = _runs_fused(fused, net, fresh, x, mesh)
            engine = _compile(train_step, eval_step, batch_size, data, mesh, rules, fused)
        train_state = engine.place(train_state)
        profiler = Profiler(profile, run_dir)
        with bar, _graceful_interrupt(stop), profiler:
            for epoch in range(len(history), epochs):
                start = time.perf_counter()
                finished = int(history[-1]["step"]) if history else 0
                profiler.before(finished, _epoch_length(data, batch_size))
                train_state, step_metrics, finite, evaluated = engine.run_epoch(train_state, epoch)
                # the epoch's one host sync
                step_metrics, finite, evaluated, step = jax.device_get(
                    (step_metrics, finite, evaluated, train_state.step)
                )
                profiler.after(int(step))
                if not finite.all():  # the state is the last good one: replay the failed step
                    failed = _Failed(epoch, finite, run.last_checkpoint())
                    raise _explain(engine, net, loss, train_step, train_state, failed)
                row = _row(epoch, int(step), step_metrics, evaluated, time.perf_counter() - start)
                history.append(row)
                if update.reduce_on_plateau is not None:  # the next epoch's rate, from history
                    train_state = _plateau_step(train_state, row, history, update, base_lr)
                run.record(epoch + 1, train_state, row, monitor, engine.position(epoch + 1))
                bar.set_postfix(_postfix(row, len(finite)), refresh=False)
                if not isinstance(data, Stream):  # a stream's bar counts steps, chunk by chunk
                    bar.update()
                stopped = _stop_reason(history, train_state, early_stopping, callbacks, stop)
                if stopped != "completed":
                    break
            # a first Ctrl-C from here on changes nothing: the last checkpoint is being written
            run.finish(train_state, history[-1] if history else None, monitor)
    return FitResult(train_state, history, None if run.folder is None else run.folder.path, stopped)


class _Failed(NamedTuple):
    """An epoch with a step that was not applied (``finite`` is False from it on)."""

    epoch: int
    finite: np.ndarray
    checkpoint: pathlib.Path | None  # the last good checkpoint, once every write finished


def _explain(
    engine: _Engine,
    net: Layer,
    loss: LossFn,
    train_step: Any,
    train_state: TrainState,
    failed: _Failed,
) -> Exception:
    """The `NonFiniteError` of the failed epoch: its first step that was not applied,
    replayed on its batch, layer by layer."""
    batch = engine.batch_at(train_state, failed.epoch, int(np.argmin(failed.finite)))
    return explain_nonfinite(net, loss, train_step, train_state, batch, failed.checkpoint)


def _progress_bar(
    data: Dataset | Stream, epochs: int, history: list[dict[str, Any]], progress: bool, desc: str
) -> Any:
    """The tqdm bar: epochs in memory; steps for a stream (its epochs may be long or of
    unknown length), advanced after every compiled chunk."""
    if isinstance(data, Dataset):
        initial = min(len(history), epochs)
        return tqdm(total=epochs, initial=initial, disable=not progress, desc=desc, unit="epoch")
    length = pass_length(data)
    done = int(history[-1]["step"]) if history else 0
    total = None if length is None else epochs * length
    return tqdm(total=total, initial=done, disable=not progress, desc=desc, unit="step")


def _step_row(row: dict[str, Any], run: Recorder, bar: Any) -> None:
    """A step row from inside an epoch: to the run's step loggers, and the progress bar."""
    run.record_steps(row)
    bar.set_postfix(_postfix(row), refresh=False)


def _check_streaming(streaming: Any, data: Dataset | Stream) -> Streaming:
    if streaming is None:
        return Streaming()
    if not isinstance(streaming, Streaming):
        raise TypeError(
            "fit: streaming must be a jaxnet.train.Streaming such as "
            f"Streaming(steps_per_call=32), got {streaming!r}"
        )
    if isinstance(data, Dataset):
        raise ValueError(
            "fit: streaming= is for a jaxnet.data.Stream; an in-memory Dataset runs each "
            "epoch as one compiled call already (for rows inside its epochs, stream it: "
            "jn.data.stream(...), see docs/streaming.md)"
        )
    if streaming.eval_every is not None and data.val is None and data.test is None:
        raise ValueError(
            f"fit: Streaming(eval_every={streaming.eval_every}) evaluates the stream's val and "
            "test sources, and it has neither (jn.data.stream(train, val=..., test=...))"
        )
    return streaming


def _epoch_length(data: Dataset | Stream, batch_size: int) -> int | None:
    """The steps of an epoch, when known before it runs."""
    if isinstance(data, Stream):
        return pass_length(data)
    return data.num_train // batch_size


def _plateau_monitor(update: Update, monitor: str, names: list[str]) -> Update:
    """``update`` with its plateau rule watching ``fit``'s monitor unless told another key."""
    plateau = update.reduce_on_plateau
    if plateau is None:
        return update
    if plateau.monitor is None:
        plateau = dataclasses.replace(plateau, monitor=monitor)
    if plateau.monitor not in names:
        raise ValueError(
            f"fit: reduce_on_plateau cannot monitor {plateau.monitor!r}; the history has {names}"
        )
    return dataclasses.replace(update, reduce_on_plateau=plateau)


def _plateau_step(
    train_state: TrainState,
    row: dict[str, Any],
    history: list[dict[str, Any]],
    update: Update,
    base_lr: float | None,
) -> TrainState:
    """Write the epoch's scale (and rate) into its row; set the next epoch's in the state."""
    assert update.reduce_on_plateau is not None
    current = lr_scale(train_state.opt_state)
    row["lr_scale"] = current
    if base_lr is not None:
        row["lr"] = base_lr * current
    scale = update.reduce_on_plateau.scale_after(history)
    if scale == current:
        return train_state
    return train_state._replace(opt_state=set_lr_scale(train_state.opt_state, scale))


def _base_learning_rate(optimizer: Any) -> float | None:
    """The optimizer's rate when it was made by name with a number for it, else None."""
    hyper = describe_optimizer(optimizer).get("hyperparameters") or {}
    rate = hyper.get("learning_rate")
    return float(rate) if isinstance(rate, int | float) and not isinstance(rate, bool) else None


def _check_update(update: Any, batch_size: int, mesh: Mesh | None) -> Update:
    """``update`` as given (or the default): its micro-batches must be equal in size, and on
    a mesh divide among the devices of its ``data`` axis."""
    if update is None:
        return Update()
    if not isinstance(update, Update):
        raise TypeError(
            f"fit: update must be a jaxnet.train.Update such as Update(accumulate=4), "
            f"got {update!r}"
        )
    if batch_size % update.accumulate:
        raise ValueError(
            f"fit: batch_size={batch_size} does not split into Update(accumulate="
            f"{update.accumulate}) equal micro-batches; make batch_size a multiple of it"
        )
    if mesh is not None and update.accumulate > 1:
        check_batch_size(batch_size // update.accumulate, mesh)  # each micro-batch splits too
    return update


def _check_checkpointing(checkpointing: Any) -> Checkpointing:
    if checkpointing is None:
        return Checkpointing()
    if not isinstance(checkpointing, Checkpointing):
        raise TypeError(
            "fit: checkpointing must be a jaxnet.train.Checkpointing such as "
            f"Checkpointing(every=5), got {checkpointing!r}"
        )
    return checkpointing


def _check_loggers(loggers: Any, run_dir: Any) -> list[Any]:
    if isinstance(loggers, str) or not isinstance(loggers, Sequence):
        raise TypeError(
            f"fit: loggers must be a list of logger names or objects, such as "
            f"['tensorboard'], got {loggers!r}"
        )
    for spec in loggers:
        check_logger(spec, run_dir)
    return list(loggers)


def _row(
    epoch: int,
    step: int,
    step_metrics: Mapping[str, Any],
    evaluated: Mapping[str, Mapping[str, Any]],
    seconds: float,
) -> dict[str, Any]:
    """One history row: train metrics averaged over the epoch's steps, then the metrics of
    each held-out split after it (``val_*``, ``test_*``; an empty split has none)."""
    row: dict[str, Any] = {"epoch": epoch + 1, "step": step}
    row |= {f"train_{k}": float(np.mean(v)) for k, v in step_metrics.items()}
    for split in ("val", "test"):  # jax.device_get returns the dict's keys sorted
        row |= {f"{split}_{k}": float(v) for k, v in evaluated.get(split, {}).items()}
    return row | {"seconds": seconds}


def _stop_reason(
    history: list[dict[str, Any]],
    train_state: TrainState,
    early_stopping: EarlyStopping | None,
    callbacks: Sequence[Callback],
    stop: _StopRequest,
) -> str:
    """Why training stops after this epoch, or ``"completed"`` to go on. Every callback runs."""
    stopped = "completed"
    if early_stopping is not None and early_stopping.should_stop(history):
        stopped = "early_stopping"
    if any([callback(history[-1], train_state) for callback in callbacks]):
        stopped = "callback"
    return "interrupted" if stop.requested else stopped


def _postfix(row: dict[str, Any], steps: int | None = None) -> dict[str, str]:
    """The bar's metrics: the row's, and ``steps/s`` for an epoch row of ``steps`` steps."""
    shown = {
        k.replace("accuracy", "acc"): f"{v:.4g}"
        for k, v in row.items()
        if k.startswith(("train_", "val_", "test_"))
    }
    if steps is not None:
        shown["steps/s"] = f"{steps / max(row['seconds'], 1e-9):.0f}"
    return shown
