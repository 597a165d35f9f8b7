"""Training written out by hand, for the references of the training tests.

Only the net's own ``init`` and ``apply``, ``jax.value_and_grad`` and optax, with the batch
order of ``fit`` spelled out: none of jaxnet's training code (its step, epoch, batching or
shuffling), so that a defect there cannot hide in the reference as well. For nets without
layer state or randomness (no BatchNorm, no dropout).
"""

import jax
import numpy as np
import optax


def initial(net, input_shape, seed=0):
    """``(params, run_key)`` as ``fit`` starts: ``jax.random.key(seed)`` is split in two, the
    first key initializes the net and the second is the run's key (shuffles, dropout)."""
    init_key, run_key = jax.random.split(jax.random.key(seed))
    _, params, state = net.init(init_key, input_shape)
    assert state == {}, "these references are for nets without layer state"
    return params, run_key


def shuffled_batches(run_key, epoch, x, y, batch_size):
    """Epoch ``epoch``'s batches in ``fit``'s order: the rows permuted with the run key folded
    with 1 (the shuffles' stream; 0 is dropout's), then with the epoch, and cut into batches in
    that order; the last ``len(y) % batch_size`` rows of the permutation sit the epoch out.
    ``x`` may be a tuple or dict of arrays, each part taking the same rows."""
    key = jax.random.fold_in(jax.random.fold_in(run_key, 1), epoch)
    order = np.asarray(jax.random.permutation(key, len(y)))
    steps = len(y) // batch_size

    def batch(rows):
        return jax.tree.map(lambda a: np.asarray(a)[rows], (x, y))

    return [batch(rows) for rows in order[: steps * batch_size].reshape(steps, batch_size)]


def make_step(net, loss, optimizer, metrics=None):
    """A jitted ``step(params, opt_state, x, y) -> (params, opt_state, report)``: the loss and
    ``metrics`` of the training-mode predictions before the update, then optax's update."""
    metrics = dict(metrics or {})

    def objective(params, x, y):
        predictions, _ = net.apply(params, {}, x, train=True)
        return loss(predictions, y), predictions

    @jax.jit
    def step(params, opt_state, x, y):
        (value, predictions), grads = jax.value_and_grad(objective, has_aux=True)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        report = {"loss": value} | {name: fn(predictions, y) for name, fn in metrics.items()}
        return optax.apply_updates(params, updates), opt_state, report

    return step
