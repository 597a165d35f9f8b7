"""The training loop: the pure step, the fused epoch, ``fit``, streaming, the non-finite
guard, the learning-rate finder, profiling and the compilation cache.

The loop stands on two packages below it: the update rule (:mod:`jaxnet.optim`, with
:class:`TrainState`) and the run folder (:mod:`jaxnet.runs`, with :func:`load` and the
checkpoints); neither imports the loop. Their public names are re-exported here as well, so
``jn.train.fit``, ``jn.train.load``, ``jn.train.Checkpointer`` and ``jn.train.Update`` all work
as they always have.
"""

from jaxnet.optim import (
    OPTIMIZERS,
    EmaState,
    LossScaleState,
    LrScaleState,
    NamedOptimizer,
    ReduceOnPlateau,
    TrainState,
    Update,
    cast_floating,
    dynamic_loss_scale,
    ema_params,
    epoch_key,
    freeze,
    lr_scale,
    optimizer,
    param_paths,
    step_key,
    trainable_mask,
    with_ema,
    with_lr_scale,
)
from jaxnet.runs import (
    Checkpointer,
    CheckpointError,
    Checkpointing,
    CheckpointMismatchError,
    CheckpointWarning,
    CsvLogger,
    JsonLinesLogger,
    LoadedRun,
    Logger,
    Model,
    PartialRestore,
    RunFolder,
    RunFolderError,
    TensorBoardLogger,
    default_run_dir,
    load,
    load_params,
    make_logger,
    tree_paths,
)
from jaxnet.train.compile_cache import default_cache_dir, enable_compile_cache
from jaxnet.train.epoch import (
    contains_convolution,
    epoch_batches,
    make_epoch,
    make_stepwise_epoch,
)
from jaxnet.train.fit import EarlyStopping, FitResult, evaluate, fit, initial_state
from jaxnet.train.guard import NonFiniteError
from jaxnet.train.lr_find import LrFindResult, lr_find
from jaxnet.train.retrace import RetraceWarning, watch_retraces
from jaxnet.train.step import make_eval_step, make_train_step
from jaxnet.train.streaming import Streaming

__all__ = [
    "OPTIMIZERS",
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointWarning",
    "Checkpointer",
    "Checkpointing",
    "CsvLogger",
    "EarlyStopping",
    "EmaState",
    "FitResult",
    "JsonLinesLogger",
    "LoadedRun",
    "Logger",
    "LossScaleState",
    "LrFindResult",
    "LrScaleState",
    "Model",
    "NamedOptimizer",
    "NonFiniteError",
    "PartialRestore",
    "ReduceOnPlateau",
    "RetraceWarning",
    "RunFolder",
    "RunFolderError",
    "Streaming",
    "TensorBoardLogger",
    "TrainState",
    "Update",
    "cast_floating",
    "contains_convolution",
    "default_cache_dir",
    "default_run_dir",
    "dynamic_loss_scale",
    "ema_params",
    "enable_compile_cache",
    "epoch_batches",
    "epoch_key",
    "evaluate",
    "fit",
    "freeze",
    "initial_state",
    "load",
    "load_params",
    "lr_find",
    "lr_scale",
    "make_epoch",
    "make_eval_step",
    "make_logger",
    "make_stepwise_epoch",
    "make_train_step",
    "optimizer",
    "param_paths",
    "step_key",
    "trainable_mask",
    "tree_paths",
    "watch_retraces",
    "with_ema",
    "with_lr_scale",
]
