"""The update rule: building and wrapping optax transformations, and the state they update.

``u ← u − η∇L(u)`` is ``optax.sgd(η)``; this package adds what a run needs around it: named
optimizers that a run folder can make again (:func:`optimizer`), a moving average of the weights
(:func:`with_ema`), reduce-on-plateau (:class:`ReduceOnPlateau`), float16 loss scaling
(:func:`dynamic_loss_scale`), freezing by path (:func:`freeze`), the :class:`Update` settings
of ``fit`` and :func:`wrapped_optimizer`, which applies them in one fixed order. It also holds
:class:`TrainState`, the one pytree an update changes (params, layer state, optimizer state,
step, key), so that the run folder (:mod:`jaxnet.runs`) and the loop (:mod:`jaxnet.train`)
both build on it.

Imports run one way: this package uses only the ground floor (core, metrics, validate); it
imports nothing of the run folder or the loop. Every name here is also reachable as
``jn.train.<name>``.
"""

from jaxnet.optim.ema import EmaState, ema_params, with_ema
from jaxnet.optim.freeze import freeze, param_paths, trainable_mask
from jaxnet.optim.optimizers import OPTIMIZERS, NamedOptimizer, optimizer
from jaxnet.optim.plateau import LrScaleState, ReduceOnPlateau, lr_scale, with_lr_scale
from jaxnet.optim.precision import LossScaleState, cast_floating, dynamic_loss_scale
from jaxnet.optim.state import TrainState, epoch_key, find_states, step_key
from jaxnet.optim.update import Update
from jaxnet.optim.wrapped import wrapped_optimizer

__all__ = [
    "OPTIMIZERS",
    "EmaState",
    "LossScaleState",
    "LrScaleState",
    "NamedOptimizer",
    "ReduceOnPlateau",
    "TrainState",
    "Update",
    "cast_floating",
    "dynamic_loss_scale",
    "ema_params",
    "epoch_key",
    "find_states",
    "freeze",
    "lr_scale",
    "optimizer",
    "param_paths",
    "step_key",
    "trainable_mask",
    "with_ema",
    "with_lr_scale",
    "wrapped_optimizer",
]
