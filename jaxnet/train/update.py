"""``Update``: how ``fit`` makes each update, beyond the optimizer's rule.

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

from jaxnet.train.step import check_accumulate


@dataclasses.dataclass(frozen=True)
class Update:
    """How each of ``fit``'s updates is made (``fit(..., update=Update(...))``).

    Args:
      accumulate: micro-batches per update. ``batch_size`` stays the examples per update;
        each batch is split into ``accumulate`` micro-batches of ``batch_size / accumulate``
        examples, whose averaged gradients make one update: the same update as without
        accumulation (to float rounding, for a net without batch statistics), with the
        activation memory of a micro-batch. ``train_state.step`` counts updates.

    Example:
      >>> Update(accumulate=4)
      Update(accumulate=4)
    """

    accumulate: int = 1

    def __post_init__(self) -> None:
        check_accumulate(self.accumulate, "Update")
