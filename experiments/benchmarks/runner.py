"""What every implementation provides to the harness: a step, optionally a fused epoch or fit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Step = Callable[[Any, Any, Any], tuple[Any, Any]]
"""``step(carry, x, y) -> (carry, loss)``: one training step on a batch."""
Epoch = Callable[[Any, Any, Any, Any], tuple[Any, Any]]
"""``epoch(carry, x_train, y_train, epoch_number) -> (carry, losses)``: one fused epoch."""

MODES = ("read", "noread", "fused", "fit")
"""(a) the step called from Python, loss read every step; (b) the same without reading it,
blocking once at the end; (c) a fused epoch (one compiled ``lax.scan``), loss read once per
epoch; (d) ``jn.train.fit`` end to end."""


class Runner:
    """One implementation bound to one case. The harness times its methods.

    Args:
      name: the row's name.
      step: ``step(carry, x, y) -> (carry, loss)``.
      carry: the initial training state (params and optimizer state).
      batches: the batches the step loops cycle through, already on the device.
      block: waits until a carry's computations are done (``jax.block_until_ready``).
      epoch: a fused epoch, when the implementation has one.
      train: ``(x_train, y_train)`` on the device, for ``epoch``.
      fit: ``fit(epochs) -> seconds of each epoch``, for jaxnet.
      analysis: ``() -> {"flops", "memory_bytes", "memory_source"}`` where known.
      note: how the implementation was built (shown under the table).
    """

    def __init__(
        self,
        name: str,
        step: Step,
        carry: Any,
        batches: list[tuple[Any, Any]],
        *,
        block: Callable[[Any], Any] = jax.block_until_ready,
        epoch: Epoch | None = None,
        train: tuple[Any, Any] | None = None,
        fit: Callable[[int], list[float]] | None = None,
        analysis: Callable[[], dict[str, Any]] | None = None,
        note: str = "",
    ) -> None:
        self.name, self.note = name, note
        self._step, self._epoch, self._fit = step, epoch, fit
        self.carry, self.batches, self._block, self._train = carry, batches, block, train
        self._analysis = analysis
        self.last_loss = float("nan")
        self.modes = tuple(
            m
            for m, ok in zip(MODES, (True, True, epoch is not None, fit is not None), strict=True)
            if ok
        )

    def steps(self, n: int, *, read: bool) -> None:
        """``n`` steps from Python, reading the loss after each (``read``) or only at the end."""
        carry, batches, step = self.carry, self.batches, self._step
        loss = None
        for i in range(n):
            x, y = batches[i % len(batches)]
            carry, loss = step(carry, x, y)
            if read:
                self.last_loss = float(loss)
        self._block(carry)
        self.carry = carry
        if loss is not None and not read:
            self.last_loss = float(loss)

    def epochs(self, n: int, first: int = 0) -> None:
        """``n`` fused epochs, reading the last loss of each (one host sync per epoch)."""
        if self._epoch is None or self._train is None:
            raise ValueError(f"{self.name} has no fused epoch")
        x, y = self._train
        carry = self.carry
        for e in range(first, first + n):
            carry, losses = self._epoch(carry, x, y, jnp.int32(e))
            self.last_loss = float(losses[-1])
        self._block(carry)
        self.carry = carry

    def fit(self, epochs: int) -> list[float]:
        if self._fit is None:
            raise ValueError(f"{self.name} has no fit")
        return self._fit(epochs)

    def analysis(self) -> dict[str, Any]:
        return {} if self._analysis is None else self._analysis()
