"""The run folder: everything a run writes and everything read back from it.

A run folder holds ``config.json`` (the settings), ``model.json`` (the net's config, its
preprocessing and optimizer), ``metrics.jsonl`` (a row per epoch), ``curves.png`` and
``checkpoints/`` (each verified by its manifest). :class:`RunFolder` owns those files and their
rules (what a fresh run, a resume or a reader may find and must refuse); :class:`Recorder` is the
one door through which the loop writes into it (loggers, checkpoint cadence, plots, the
background writer); :func:`load` rebuilds a trained model from a folder with no user code.

Imports run one way: this package builds on the ground floor, the data and the update rule
(:mod:`jaxnet.optim`, where :class:`jaxnet.optim.TrainState` lives); it never imports the loop
(:mod:`jaxnet.train`), which imports it. Every name here is also reachable as
``jn.train.<name>``.
"""

from jaxnet.runs.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointMismatchError,
    PartialRestore,
    tree_paths,
)
from jaxnet.runs.folder import CheckpointWarning, RunFolder, RunFolderError, default_run_dir
from jaxnet.runs.load import LoadedRun, load, load_params
from jaxnet.runs.loggers import CsvLogger, JsonLinesLogger, Logger, TensorBoardLogger, make_logger
from jaxnet.runs.model import Model
from jaxnet.runs.recorder import Checkpointing, Recorder

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "CheckpointWarning",
    "Checkpointer",
    "Checkpointing",
    "CsvLogger",
    "JsonLinesLogger",
    "LoadedRun",
    "Logger",
    "Model",
    "PartialRestore",
    "Recorder",
    "RunFolder",
    "RunFolderError",
    "TensorBoardLogger",
    "default_run_dir",
    "load",
    "load_params",
    "make_logger",
    "tree_paths",
]
