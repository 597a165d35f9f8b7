"""Training: the train state, the pure step, the fused ``fit`` loop, run folders, checkpoints,
loggers."""

from jaxnet.train.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointMismatchError,
    PartialRestore,
    tree_paths,
)
from jaxnet.train.compile_cache import default_cache_dir, enable_compile_cache
from jaxnet.train.ema import EmaState, ema_params, with_ema
from jaxnet.train.epoch import (
    contains_convolution,
    epoch_batches,
    make_epoch,
    make_stepwise_epoch,
)
from jaxnet.train.fit import EarlyStopping, FitResult, evaluate, fit, initial_state
from jaxnet.train.freeze import freeze, param_paths, trainable_mask
from jaxnet.train.guard import NonFiniteError
from jaxnet.train.load import LoadedRun, load, load_params
from jaxnet.train.loggers import (
    CsvLogger,
    JsonLinesLogger,
    Logger,
    TensorBoardLogger,
    make_logger,
)
from jaxnet.train.lr_find import LrFindResult, lr_find
from jaxnet.train.model import Model
from jaxnet.train.optimizers import OPTIMIZERS, NamedOptimizer, optimizer
from jaxnet.train.plateau import LrScaleState, ReduceOnPlateau, lr_scale, with_lr_scale
from jaxnet.train.precision import LossScaleState, cast_floating, dynamic_loss_scale
from jaxnet.train.recorder import Checkpointing, CheckpointWarning
from jaxnet.train.retrace import RetraceWarning, watch_retraces
from jaxnet.train.run import RunFolder, RunFolderError, default_run_dir
from jaxnet.train.state import TrainState, epoch_key, step_key
from jaxnet.train.step import make_eval_step, make_train_step
from jaxnet.train.streaming import Streaming
from jaxnet.train.update import Update

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
