"""Finding where a training step went non-finite, by layer path."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jaxnet.core import Layer, intermediates
from jaxnet.optim.freeze import param_paths
from jaxnet.optim.state import TrainState, step_key
from jaxnet.train.epoch import TrainStep
from jaxnet.train.step import Batch, LossFn


class NonFiniteError(FloatingPointError):
    """A training step produced a non-finite loss or gradient.

    Attributes:
      step: the 1-based number of the step that failed (``train_state.step + 1``).
      layer: the path of the first layer whose output was non-finite; else the first whose
        gradient was (in backward order); else the first whose update overflowed; else the
        layer with the largest output (the loss itself overflowed).
      checkpoint: the last good checkpoint folder, if the run keeps one.
    """

    def __init__(self, message: str, *, step: int, layer: str | None, checkpoint: Any) -> None:
        super().__init__(message)
        self.step = step
        self.layer = layer
        self.checkpoint = checkpoint


def _all_finite(value: Any) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(value))


def replay_outputs(net: Layer, train_state: TrainState, batch: Batch) -> dict[str, Any]:
    """Every layer's output in the training forward pass of the step after ``train_state``,
    replayed eagerly, in forward order."""
    x, _ = batch
    return intermediates(
        net, train_state.params, train_state.state, x, key=step_key(train_state), train=True
    )


def nonfinite_gradients(
    net: Layer, loss_fn: LossFn, train_state: TrainState, batch: Batch
) -> list[str]:
    """The parameter paths (``serial/dense_1/w``) whose gradient is non-finite."""
    x, y = batch

    def loss(params: Any) -> Any:
        predictions, _ = net.apply(
            params, train_state.state, x, key=step_key(train_state), train=True
        )
        return loss_fn(predictions, y)

    grads = jax.grad(loss)(train_state.params)
    paths = param_paths(grads)
    leaves = jax.tree.leaves(grads)
    return [f"{net.name}/{p}" for p, g in zip(paths, leaves, strict=True) if not _all_finite(g)]


def nonfinite_updates(
    net: Layer, train_step: TrainStep, train_state: TrainState, batch: Batch
) -> list[str]:
    """The parameter paths that the step would make non-finite."""
    new, _ = train_step(train_state, batch)
    paths = param_paths(new.params)
    leaves = jax.tree.leaves(new.params)
    return [f"{net.name}/{p}" for p, v in zip(paths, leaves, strict=True) if not _all_finite(v)]


def _listed(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (", ..." if len(paths) > 3 else "")


def explain_nonfinite(
    net: Layer,
    loss_fn: LossFn,
    train_step: TrainStep,
    train_state: TrainState,
    batch: Batch,
    checkpoint: Any,
) -> NonFiniteError:
    """The error to raise when the step after ``train_state`` goes non-finite on ``batch``.

    Replays that step eagerly and reports the first layer (forward order) whose output was
    non-finite, the parameters whose gradient was (backward order, as backpropagation computes
    them), and those the update would make non-finite.
    """
    step = int(train_state.step) + 1
    outputs = replay_outputs(net, train_state, batch)
    bad_output = next((p for p, value in outputs.items() if not _all_finite(value)), None)
    rank = {path: i for i, path in enumerate(outputs)}

    def forward_order(paths: list[str]) -> list[str]:
        return sorted(paths, key=lambda p: rank.get(p.rsplit("/", 1)[0], len(rank)))

    # backpropagation runs from the loss backwards: the first gradient to go bad is the last
    bad_grads = forward_order(nonfinite_gradients(net, loss_fn, train_state, batch))[::-1]
    bad_params = forward_order(nonfinite_updates(net, train_step, train_state, batch))
    culprits = [p.rsplit("/", 1)[0] for p in bad_grads + bad_params]
    largest = max(outputs, key=lambda p: float(jnp.max(jnp.abs(outputs[p]))))
    layer = bad_output or (culprits[0] if culprits else largest)
    parts = [f"non-finite loss or parameters at step {step}"]
    if bad_output:
        parts.append(f"first non-finite output: {bad_output}")
    else:
        size = float(jnp.max(jnp.abs(outputs[largest])))
        parts.append(f"every layer output is finite, the largest |output| {size:.3g} at {largest}")
    if bad_grads:
        parts.append(f"non-finite gradients (backward order): {_listed(bad_grads)}")
    elif bad_params:
        parts.append(f"finite gradients, but the update overflows: {_listed(bad_params)}")
    parts.append(
        f"last good checkpoint kept: {checkpoint}" if checkpoint else "no checkpoint was written"
    )
    hint = "try a smaller learning rate or gradient clipping (optax.clip_by_global_norm)"
    message = "; ".join(parts) + f". {hint}"
    return NonFiniteError(message, step=step, layer=layer, checkpoint=checkpoint)
