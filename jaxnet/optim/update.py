"""``Update``: how ``fit`` makes each update, beyond the optimizer's rule: gradient
accumulation, an exponential moving average of the weights (:mod:`jaxnet.optim.ema`) and a
learning rate reduced on a plateau (:mod:`jaxnet.optim.plateau`).

Gradient accumulation splits each step's batch into micro-batches that run one after another
inside the compiled step (:func:`jaxnet.train.make_train_step`'s ``accumulate``): the update
is the one of the whole batch, computed with the activation memory of a micro-batch.

Why not ``optax.MultiSteps``: it accumulates over ``k`` separate calls of the step, one
micro-batch each, so ``train_state.step`` would count micro-batches, ``fit``'s epochs would
draw ``k`` times as many batches, and the gradient sum would live in the optimizer state (a
second copy of the parameters in every checkpoint). Accumulating inside one step keeps the
sum in the inner ``lax.scan``'s carry, the step counting updates, and the data path unchanged.
"""

from __future__ import annotations

import dataclasses

from jaxnet.optim.ema import check_decay
from jaxnet.optim.plateau import ReduceOnPlateau
from jaxnet.validate import checked_fields, flag, positive_int


@dataclasses.dataclass(frozen=True)
class Update:
    """How each of ``fit``'s updates is made (``fit(..., update=Update(...))``).

    Args:
      accumulate: micro-batches per update. ``batch_size`` stays the examples per update;
        each batch is split into ``accumulate`` micro-batches of ``batch_size / accumulate``
        examples, whose averaged gradients make one update: the same update as without
        accumulation (to float rounding, for a net without batch statistics), with the
        activation memory of a micro-batch. ``train_state.step`` counts updates.
      ema: keep an exponential moving average of the weights with this decay (``0.999``),
        updated inside the compiled step (:func:`jaxnet.train.with_ema`), saved in every
        checkpoint and restored exactly; None keeps none.
      evaluate_ema: evaluate the validation and test splits with the averaged weights, so
        the history, the best checkpoint and early stopping follow them, and
        :func:`jaxnet.runs.load` gives them as the model's parameters.
      reduce_on_plateau: a :class:`jaxnet.train.ReduceOnPlateau`: scale the updates down
        when the monitored metric stops improving (``lr_scale`` and ``lr`` in the history).

    Example:
      >>> Update(accumulate=4, ema=0.999)
      Update(accumulate=4, ema=0.999, evaluate_ema=False, reduce_on_plateau=None)
    """

    accumulate: int = 1
    ema: float | None = None
    evaluate_ema: bool = False
    reduce_on_plateau: ReduceOnPlateau | None = None

    def __post_init__(self) -> None:
        checked_fields(
            self,
            accumulate=positive_int(self.accumulate, "accumulate", owner="Update"),
            ema=None if self.ema is None else check_decay(self.ema, "Update"),
            evaluate_ema=flag(self.evaluate_ema, "evaluate_ema", owner="Update"),
        )
        if self.evaluate_ema and self.ema is None:
            raise ValueError("Update: evaluate_ema=True needs ema=, the decay of the average")
        plateau = self.reduce_on_plateau
        if plateau is not None and not isinstance(plateau, ReduceOnPlateau):
            raise TypeError(
                "Update: reduce_on_plateau must be a jaxnet.train.ReduceOnPlateau such as "
                f"ReduceOnPlateau(patience=5), got {plateau!r}"
            )
