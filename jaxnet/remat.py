"""Rematerialization: trade compute for activation memory with ``jax.checkpoint``.

Backpropagation needs the forward pass's intermediate values (the activations). Normally the
forward pass keeps all of them until the backward pass uses them, so a deep net's memory grows
with its depth. :func:`remat` wraps a layer in ``jax.checkpoint``: the forward pass keeps only
the layer's inputs (and whatever the policy says to save), and the backward pass computes the
layer's inside again from them. Wrapped around each block of a deep net, that bounds what is
kept per block to about one activation, at the price of about one more forward pass.

The wrapped layer is the same layer to everything but the memory: the same ``init`` (so the same
params and state, under the same paths: checkpoints of a net with and without remat are
interchangeable), the same outputs and gradients (to float rounding), the same name inside
combinators, the same rows in :func:`jaxnet.summary` and the same :func:`jaxnet.intermediates`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from jaxnet.core import (
    Array,
    CaptureFn,
    Layer,
    Params,
    State,
    _check_layers,
    check_input,
)
from jaxnet.describe import described

POLICIES = (
    "dots_saveable",
    "dots_with_no_batch_dims_saveable",
    "everything_saveable",
    "nothing_saveable",
)
"""The policies :func:`remat` accepts, by their names in ``jax.checkpoint_policies``.

``None`` (the default) is ``jax.checkpoint``'s own default: save nothing but the inputs and
recompute everything. ``"dots_saveable"`` keeps the results of matrix multiplications and
convolutions and recomputes the cheap elementwise work around them;
``"dots_with_no_batch_dims_saveable"`` keeps only those without batch dimensions (a ``Dense``'s
``x @ w``, not attention's batched ``q @ kᵀ``); ``"everything_saveable"`` keeps everything
(no memory saved, nothing recomputed: a way to switch remat off in a config);
``"nothing_saveable"`` keeps nothing, like ``None``. The policies that need arguments
(``save_only_these_names``, offloading) are left out: jaxnet's layers name no values.
"""


def _policy(policy: Any) -> Callable[..., bool] | None:
    """The ``jax.checkpoint_policies`` function a policy name stands for (None for None).

    Raises:
      TypeError: for a policy that is not a string (a function cannot go into a config).
      ValueError: for an unknown name.
    """
    if policy is None:
        return None
    known = ", ".join(map(repr, POLICIES))
    if not isinstance(policy, str):
        by_name = [n for n in POLICIES if getattr(jax.checkpoint_policies, n) is policy]
        hint = f"policy={by_name[0]!r}" if by_name else "one of " + known
        raise TypeError(
            f"remat: policy must be None or the name of a jax.checkpoint_policies policy, so "
            f"that a net config can hold it; got {policy!r}: pass {hint}"
        )
    if policy not in POLICIES:
        raise ValueError(f"remat: unknown policy {policy!r}; the known policies are {known}")
    fn: Callable[..., bool] = getattr(jax.checkpoint_policies, policy)
    return fn


def _checkpointed(fn: Callable[..., Any], policy: Callable[..., bool] | None) -> Any:
    """``{train: fn(params, state, x, key, train) under jax.checkpoint}`` for both flags.

    ``train`` is a Python bool that picks code paths (dropout, batch statistics), so it is closed
    over rather than traced: one checkpointed function per value, each traced once.
    """

    def one(train: bool) -> Any:
        def forward(params: Params, state: State, x: Array, key: Array | None) -> Any:
            return fn(params, state, x, key=key, train=train)

        return jax.checkpoint(forward, policy=policy)

    return {False: one(False), True: one(True)}


def _checkpointed_capture(
    fn: CaptureFn, policy: Callable[..., bool] | None, name: str
) -> CaptureFn:
    """``fn`` (a combinator's ``capture``) under ``jax.checkpoint``, keeping the forward order
    of its outputs.

    A dict that leaves ``jax.checkpoint`` comes back with sorted keys, so the outputs travel as
    a tuple and their paths (the same on every trace: they are the net's structure) are noted
    while tracing.
    """
    paths: dict[bool, list[str]] = {}

    def values(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> Any:
        y, new_state, outputs = fn(params, state, x, key=key, train=train)
        paths[train] = list(outputs)
        return y, new_state, tuple(outputs.values())

    captures = _checkpointed(values, policy)

    def capture(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State, dict[str, Array]]:
        check_input(x, layer=name)
        y, new_state, outputs = captures[bool(train)](params, state, x, key)
        return y, new_state, dict(zip(paths[bool(train)], outputs, strict=True))

    return capture


@described("remat")
def remat(layer: Layer, policy: str | None = None) -> Layer:
    """The same layer, recomputed in the backward pass instead of keeping its activations.

    Wraps ``layer.apply`` in ``jax.checkpoint`` with the policy of that name from
    ``jax.checkpoint_policies`` (see :data:`POLICIES`). Under ``jax.grad`` the forward pass
    keeps only the layer's inputs (and what the policy saves) and the backward pass runs the
    layer's forward again: about one more forward pass of compute, for activation memory that
    no longer grows with what happens inside the layer. Without differentiation nothing changes.

    Everything else is the wrapped layer's: ``init`` (the same params and state under the same
    paths, so checkpoints are interchangeable with the plain net's), its name inside combinators
    (``remat(Dense(4))`` in a ``serial`` is still ``dense_0``), its outputs and gradients (to
    float rounding; recomputed dropout draws the same mask from the same ``key``), its new
    state (BatchNorm), :func:`jaxnet.summary` rows and :func:`jaxnet.intermediates` paths.

    Args:
      layer: the layer to rematerialize, typically one block of a deep net.
      policy: ``None`` (``jax.checkpoint``'s default: recompute everything) or one of
        ``"dots_saveable"``, ``"dots_with_no_batch_dims_saveable"``,
        ``"everything_saveable"``, ``"nothing_saveable"``.

    Returns:
      A layer with the wrapped layer's ``init``, name and sublayers.

    Raises:
      TypeError: if ``layer`` is not a :class:`jaxnet.Layer`, or ``policy`` is neither None
        nor a string.
      ValueError: for an unknown policy name (the message lists the known ones).

    Example:
      >>> import jax, jax.numpy as jnp, jaxnet as jn
      >>> from jaxnet.remat import remat
      >>> block = jn.serial(jn.nn.Dense(8), jn.nn.Relu)
      >>> net = jn.serial(remat(block), remat(block, policy="dots_saveable"), jn.nn.Dense(1))
      >>> _, params, state = net.init(jax.random.key(0), (4, 8))
      >>> sorted(params)  # the same paths as without remat
      ['dense_0', 'serial_0', 'serial_1']
      >>> grads = jax.grad(lambda p: net.apply(p, state, jnp.ones((4, 8)))[0].sum())(params)
      >>> grads["serial_1"]["dense_0"]["w"].shape
      (8, 8)
    """
    (layer,) = _check_layers((layer,), "remat")
    checkpoint_policy = _policy(policy)
    applies = _checkpointed(layer.apply, checkpoint_policy)

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        check_input(x, layer=layer.name)
        y, new_state = applies[bool(train)](params, state, x, key)
        return y, new_state

    capture: CaptureFn | None = None
    if layer.capture is not None:  # a combinator: its sublayers' outputs, computed the same way
        capture = _checkpointed_capture(layer.capture, checkpoint_policy, layer.name)

    return layer._replace(apply=apply, capture=capture)
