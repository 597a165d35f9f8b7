"""Recurrent networks: the cells ``SimpleRNN``, ``LSTM``, ``GRU``, the ``RNN`` layer that scans
a cell over time with ``jax.lax.scan``, and ``Bidirectional``, which runs a layer both ways.

Conventions, written once (``docs/layers/sequences.md`` has the long version):

* Sequences are batch first: ``(batch, time, features)``. ``RNN`` maps ``(B, T, F)`` to
  ``(B, T, H)`` (every step's output) or ``(B, H)`` (the last one, ``return_sequences=False``).
* A cell is not a layer: it maps ``(carry, x_t) -> (carry, y_t)`` for one time step. It is a
  :class:`Cell`, a NamedTuple of pure functions (``init``, ``initial_carry``, ``step``), so a cell
  of your own is three functions, nothing to subclass. Carries are dicts: ``{"h"}`` for
  ``SimpleRNN`` and ``GRU``, ``{"h", "c"}`` for ``LSTM``; every cell outputs ``y_t = h_t``.
* Weights are stored as ``x · W`` (inputs on the left, like ``Dense``): ``w_i`` is
  ``(in_features, gates·H)``, ``w_h`` is ``(H, gates·H)``, with the gates side by side in
  PyTorch's order (LSTM ``i, f, g, o``; GRU ``r, z, n``). PyTorch's ``weight_ih_l0`` is
  ``(gates·H, in_features)``, so ``w_i = weight_ih_l0.T`` and ``w_h = weight_hh_l0.T``: a
  transpose, no reordering.
* Padding: ``RNN.apply`` takes ``x`` or a tuple ``(x, mask)`` with a ``(B, T)`` bool mask (True =
  a real step). A masked step keeps the carry unchanged and outputs zeros; the "last output" is
  the output of the last real step processed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
from jax import lax

from jaxnet.core import (
    Array,
    Layer,
    Params,
    Shape,
    ShapeError,
    State,
    _apply_and_capture,
    _apply_child,
    _check_unexpected_children,
    _init_child,
    _put,
    as_shape,
    format_shape,
)
from jaxnet.describe import Spec, described
from jaxnet.nn._checks import (
    callable_arg,
    check_mask,
    expect_shape,
    flag,
    positive_int,
    split_input,
)
from jaxnet.nn.linear import LECUN_NORMAL, Initializer

Carry = Any
"""A cell's state between steps: a dict of arrays of shape ``(*batch, H)``, e.g. ``{"h", "c"}``."""

ORTHOGONAL = jax.nn.initializers.orthogonal()
"""The default initializer of each gate's recurrent block ``(H, H)``: a random orthogonal matrix."""


class CellInitFn(Protocol):
    """``init(key, in_features) -> params``."""

    def __call__(self, key: Array, in_features: int) -> Params:
        """Create the cell's parameters for inputs of width ``in_features``."""
        ...


class InitialCarryFn(Protocol):
    """``initial_carry(batch_shape, dtype=float32) -> carry`` (zeros)."""

    def __call__(self, batch_shape: Sequence[int], dtype: Any = jnp.float32) -> Carry:
        """The carry before the first step, for inputs with leading axes ``batch_shape``."""
        ...


class StepFn(Protocol):
    """``step(params, carry, x_t) -> (new_carry, y_t)`` for one time step."""

    def __call__(self, params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        """Advance the cell by one step: ``x_t`` is ``(*batch, in_features)``."""
        ...


class Cell(NamedTuple):
    """A recurrent cell: pure functions for one time step, and what they need to be scanned.

    Attributes:
      init: ``(key, in_features) -> params``, a dict of arrays with readable names.
      initial_carry: ``(batch_shape, dtype=float32) -> carry``, the zero state, each array of
        shape ``(*batch_shape, features)``.
      step: ``(params, carry, x_t) -> (new_carry, y_t)``; ``x_t`` is ``(*batch, in_features)``
        and ``y_t`` is ``(*batch, features)``.
      name: the kind of cell (``"lstm"``); ``RNN(cell)`` is a layer of that kind.
      features: the width ``H`` of the outputs (and of the hidden state).
      in_features: ``params -> in_features``, the input width the params were made for;
        ``RNN`` uses it to report a wrong input width before scanning. ``None`` skips that check.
      spec: how the cell was built, for :func:`jaxnet.to_config` (``None`` if by hand).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = LSTM(4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> carry = cell.initial_carry((2,))
      >>> carry, y = cell.step(params, carry, jnp.ones((2, 3)))
      >>> y.shape, sorted(carry)
      ((2, 4), ['c', 'h'])
    """

    init: CellInitFn
    initial_carry: InitialCarryFn
    step: StepFn
    name: str
    features: int
    in_features: Callable[[Params], int] | None = None
    spec: Spec | None = None


# ----------------------------------------------------------------------------- helpers


def _row(b: Array, like: Array) -> Array:
    """A bias ``(n,)`` as ``(1, ..., 1, n)``, to add to ``like`` without rank promotion."""
    return b.reshape((1,) * (like.ndim - 1) + b.shape)


def _gate_weights(
    key: Array,
    in_features: int,
    features: int,
    gates: int,
    w_i_init: Initializer,
    w_h_init: Initializer,
) -> dict[str, Array]:
    """``w_i (in, gates·H)`` in one draw; ``w_h (H, gates·H)`` as one ``(H, H)`` draw per gate."""
    i_key, h_key = jax.random.split(key)
    w_i = w_i_init(i_key, (in_features, gates * features), jnp.float32)
    blocks = [
        w_h_init(k, (features, features), jnp.float32) for k in jax.random.split(h_key, gates)
    ]
    return {"w_i": w_i, "w_h": jnp.concatenate(blocks, axis=1)}


def _zeros_carry(names: tuple[str, ...], features: int) -> InitialCarryFn:
    def initial_carry(batch_shape: Sequence[int], dtype: Any = jnp.float32) -> Carry:
        return {n: jnp.zeros((*tuple(batch_shape), features), dtype) for n in names}

    return initial_carry


def _in_features(params: Params) -> int:
    return int(params["w_i"].shape[0])


def _check_step_input(x_t: Array, params: Params, name: str) -> None:
    expect_shape(x_t, (..., params["w_i"].shape[0]), layer=name)


# ----------------------------------------------------------------------------- cells


@described("nn.SimpleRNN")
def SimpleRNN(
    features: int,
    *,
    activation: Callable[[Array], Array] = jnp.tanh,
    w_i_init: Initializer = LECUN_NORMAL,
    w_h_init: Initializer = ORTHOGONAL,
) -> Cell:
    """The Elman cell: ``h' = activation(x · W_i + h · W_h + b)``, output ``y = h'``.

    Params ``{"w_i": (in_features, H), "w_h": (H, H), "b": (H,)}``; carry ``{"h": (*batch, H)}``.
    PyTorch's ``nn.RNN`` (one layer, tanh): ``w_i = weight_ih_l0.T``, ``w_h = weight_hh_l0.T``,
    ``b = bias_ih_l0 + bias_hh_l0``. Keras's ``SimpleRNN`` (``kernel``, ``recurrent_kernel``,
    ``bias``) copies over as it is.

    Defaults: ``w_i`` LeCun normal (variance ``1/in_features``, as ``Dense``) keeps ``x · W_i`` at
    the scale of ``x``; ``w_h`` orthogonal (as Keras and Flax) preserves the norm of ``h`` from
    step to step at the start, so gradients neither explode nor vanish through the first
    updates (Saxe et al., 2014); ``b`` zeros.

    Args:
      features: ``H``, the width of the hidden state and the output; a positive int.
      activation: the elementwise non-linearity (``jnp.tanh``; ``jax.nn.relu`` gives an IRNN).
      w_i_init: initializer of ``w_i`` ``(in_features, H)``.
      w_h_init: initializer of ``w_h`` ``(H, H)``.

    Raises:
      TypeError, ValueError: at construction, for a bad ``features`` or a non-callable argument.
      ShapeError: in ``step``, if the last axis of ``x_t`` is not ``in_features``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = SimpleRNN(4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> jax.tree.map(jnp.shape, params)
      {'b': (4,), 'w_h': (4, 4), 'w_i': (3, 4)}
    """
    features = positive_int(features, layer="simple_rnn", argument="features")
    callable_arg(activation, layer="simple_rnn", argument="activation")
    callable_arg(w_i_init, layer="simple_rnn", argument="w_i_init")
    callable_arg(w_h_init, layer="simple_rnn", argument="w_h_init")

    def init(key: Array, in_features: int) -> Params:
        params = _gate_weights(key, in_features, features, 1, w_i_init, w_h_init)
        return {**params, "b": jnp.zeros((features,), jnp.float32)}

    def step(params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        _check_step_input(x_t, params, "simple_rnn")
        a = x_t @ params["w_i"] + carry["h"] @ params["w_h"]  # (*batch, H)
        h = activation(a + _row(params["b"], a))
        return {"h": h}, h

    return Cell(init, _zeros_carry(("h",), features), step, "simple_rnn", features, _in_features)


@described("nn.LSTM")
def LSTM(
    features: int,
    *,
    forget_bias: float = 1.0,
    w_i_init: Initializer = LECUN_NORMAL,
    w_h_init: Initializer = ORTHOGONAL,
) -> Cell:
    """The long short-term memory cell (Hochreiter & Schmidhuber, 1997), in PyTorch's form.

    With ``z = x · W_i + h · W_h + b`` split into four blocks of width ``H`` in the order
    ``i, f, g, o``::

        i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ tanh(c')          output y = h'

    Params ``{"w_i": (in_features, 4H), "w_h": (H, 4H), "b": (4H,)}``; carry
    ``{"h": (*batch, H), "c": (*batch, H)}``. From PyTorch's ``nn.LSTM``: ``w_i = weight_ih_l0.T``,
    ``w_h = weight_hh_l0.T``, ``b = bias_ih_l0 + bias_hh_l0`` (same gate order, no reordering).
    Keras's ``LSTM`` uses the same layout and order (``kernel``, ``recurrent_kernel``, ``bias``).

    Defaults: ``w_i`` LeCun normal, ``w_h`` orthogonal per gate (see :func:`SimpleRNN`), ``b``
    zeros except the forget gate's block, which starts at ``forget_bias=1.0`` so that ``f ≈ 0.73``
    and the cell remembers by default; Jozefowicz et al. (2015) found this closes most of the
    gap between LSTM and GRU (Keras's ``unit_forget_bias=True``). PyTorch draws every weight and
    bias, the forget gate's too, from ``U(−1/√H, 1/√H)`` (``forget_bias=0.0`` is the closest
    constant start); weights imported from PyTorch keep their own bias.

    Args:
      features: ``H``, a positive int.
      forget_bias: the initial value of the forget gate's bias block ``b[H:2H]``.
      w_i_init: initializer of ``w_i`` ``(in_features, 4H)``.
      w_h_init: initializer of each gate's block of ``w_h``, called with shape ``(H, H)``.

    Raises:
      TypeError, ValueError: at construction, for a bad ``features``, a non-number
        ``forget_bias`` or a non-callable initializer.
      ShapeError: in ``step``, if the last axis of ``x_t`` is not ``in_features``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> params = LSTM(4).init(jax.random.key(0), 3)
      >>> jax.tree.map(jnp.shape, params)
      {'b': (16,), 'w_h': (4, 16), 'w_i': (3, 16)}
      >>> params["b"].reshape(4, 4)[:, 0]  # gates i, f, g, o
      Array([0., 1., 0., 0.], dtype=float32)
    """
    features = positive_int(features, layer="lstm", argument="features")
    if isinstance(forget_bias, bool) or not isinstance(forget_bias, int | float):
        raise TypeError(
            f"lstm: forget_bias must be a number, got {type(forget_bias).__name__} {forget_bias!r}"
        )
    callable_arg(w_i_init, layer="lstm", argument="w_i_init")
    callable_arg(w_h_init, layer="lstm", argument="w_h_init")

    def init(key: Array, in_features: int) -> Params:
        params = _gate_weights(key, in_features, features, 4, w_i_init, w_h_init)
        b = jnp.zeros((4, features), jnp.float32).at[1].set(forget_bias)  # rows: i, f, g, o
        return {**params, "b": b.reshape(4 * features)}

    def step(params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        _check_step_input(x_t, params, "lstm")
        z = x_t @ params["w_i"] + carry["h"] @ params["w_h"]  # (*batch, 4H)
        i, f, g, o = jnp.split(z + _row(params["b"], z), 4, axis=-1)  # each (*batch, H)
        c = jax.nn.sigmoid(f) * carry["c"] + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return {"h": h, "c": c}, h

    return Cell(init, _zeros_carry(("h", "c"), features), step, "lstm", features, _in_features)


@described("nn.GRU")
def GRU(
    features: int,
    *,
    w_i_init: Initializer = LECUN_NORMAL,
    w_h_init: Initializer = ORTHOGONAL,
) -> Cell:
    """The gated recurrent unit (Cho et al., 2014), in PyTorch's form (reset gate after ``W_h``).

    With input and hidden projections split into blocks of width ``H`` in the order ``r, z, n``
    (``x · W_i + b_i = [a_r, a_z, a_n]``, ``h · W_h + b_h = [u_r, u_z, u_n]``)::

        r = σ(a_r + u_r)   z = σ(a_z + u_z)
        n = tanh(a_n + r ⊙ u_n)
        h' = (1 − z) ⊙ n + z ⊙ h          output y = h'

    The reset gate multiplies ``h · W_hn + b_hn`` (after the matrix product), which is why the
    input and hidden biases are kept apart. Params ``{"w_i": (in_features, 3H), "w_h": (H, 3H),
    "b_i": (3H,), "b_h": (3H,)}``; carry ``{"h": (*batch, H)}``. From PyTorch's ``nn.GRU``:
    ``w_i = weight_ih_l0.T``, ``w_h = weight_hh_l0.T``, ``b_i = bias_ih_l0``, ``b_h = bias_hh_l0``.
    Keras's ``GRU`` (``reset_after=True``) orders its blocks ``z, r, n``: swap the first two
    blocks of ``kernel``, ``recurrent_kernel`` and both rows of its ``bias (2, 3H)``.

    Defaults: ``w_i`` LeCun normal, ``w_h`` orthogonal per gate (see :func:`SimpleRNN`), biases
    zeros (``z = 0.5`` at the start: half new candidate, half old state).

    Args:
      features: ``H``, a positive int.
      w_i_init: initializer of ``w_i`` ``(in_features, 3H)``.
      w_h_init: initializer of each gate's block of ``w_h``, called with shape ``(H, H)``.

    Raises:
      TypeError, ValueError: at construction, for a bad ``features`` or a non-callable
        initializer.
      ShapeError: in ``step``, if the last axis of ``x_t`` is not ``in_features``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> params = GRU(4).init(jax.random.key(0), 3)
      >>> jax.tree.map(jnp.shape, params)
      {'b_h': (12,), 'b_i': (12,), 'w_h': (4, 12), 'w_i': (3, 12)}
    """
    features = positive_int(features, layer="gru", argument="features")
    callable_arg(w_i_init, layer="gru", argument="w_i_init")
    callable_arg(w_h_init, layer="gru", argument="w_h_init")

    def init(key: Array, in_features: int) -> Params:
        params = _gate_weights(key, in_features, features, 3, w_i_init, w_h_init)
        zeros = jnp.zeros((3 * features,), jnp.float32)
        return {**params, "b_i": zeros, "b_h": zeros}

    def step(params: Params, carry: Carry, x_t: Array) -> tuple[Carry, Array]:
        _check_step_input(x_t, params, "gru")
        a = x_t @ params["w_i"]  # (*batch, 3H)
        u = carry["h"] @ params["w_h"]  # (*batch, 3H)
        a_r, a_z, a_n = jnp.split(a + _row(params["b_i"], a), 3, axis=-1)
        u_r, u_z, u_n = jnp.split(u + _row(params["b_h"], u), 3, axis=-1)
        r = jax.nn.sigmoid(a_r + u_r)
        z = jax.nn.sigmoid(a_z + u_z)
        n = jnp.tanh(a_n + r * u_n)
        h = (1.0 - z) * n + z * carry["h"]
        return {"h": h}, h

    return Cell(init, _zeros_carry(("h",), features), step, "gru", features, _in_features)


# ----------------------------------------------------------------------------- scanning


def _expand(m: Array, like: Array) -> Array:
    """``m (*batch,)`` as ``(*batch, 1, ...)``, to select between arrays shaped like ``like``."""
    return m.reshape(m.shape + (1,) * (like.ndim - m.ndim))


def scan_cell(
    cell: Cell,
    params: Params,
    x: Array,
    *,
    mask: Array | None = None,
    reverse: bool = False,
    initial_carry: Carry | None = None,
) -> tuple[Array, Carry]:
    """Run ``cell`` over the time axis of ``x`` with ``jax.lax.scan``; the body of ``RNN``.

    Step ``t`` computes ``carry, y[..., t, :] = cell.step(params, carry, x[..., t, :])``, for
    ``t = 0, 1, ..., T-1``, or ``T-1, ..., 0`` when ``reverse`` (outputs stay at the positions of
    their inputs, as in ``lax.scan(reverse=True)``). Where ``mask`` is False the step is skipped:
    the carry passes through unchanged and the output is zero.

    Args:
      cell: a :class:`Cell`.
      params: the cell's params.
      x: inputs of shape ``(*batch, T, in_features)``; any number of batch axes, even none.
      mask: ``None``, or a bool array ``(*batch, T)``, True for real steps.
      reverse: scan from the last step to the first.
      initial_carry: the carry before the first step processed; zeros by default. Cast to the
        dtype of the computation (that of ``x`` and ``params``).

    Returns:
      ``(outputs, final_carry)``: outputs ``(*batch, T, features)``; the carry after the last
      step processed (the last real one, with a mask).

    Raises:
      ShapeError: if ``x`` has fewer than two axes, or ``mask`` is not ``x.shape[:-1]``.
      TypeError: if ``mask`` is not bool.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> cell = GRU(4)
      >>> params = cell.init(jax.random.key(0), 3)
      >>> ys, carry = scan_cell(cell, params, jnp.ones((2, 5, 3)))
      >>> ys.shape, carry["h"].shape
      ((2, 5, 4), (2, 4))
    """
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ShapeError(
            f"expected input (..., time, features), got {format_shape(x.shape)}", root=cell.name
        )
    dtype = jnp.result_type(x, *jax.tree.leaves(params))
    if initial_carry is None:
        initial_carry = cell.initial_carry(x.shape[:-2], dtype)
    carry = jax.tree.map(lambda c: jnp.asarray(c, dtype), initial_carry)
    xs = jnp.moveaxis(x, -2, 0)  # (T, *batch, F)
    if mask is None:

        def body(carry: Carry, x_t: Array) -> tuple[Carry, Array]:
            return cell.step(params, carry, x_t)

        carry, ys = lax.scan(body, carry, xs, reverse=reverse)
    else:
        mask = check_mask(mask, tuple(x.shape[:-1]), layer=cell.name)

        def masked_body(carry: Carry, inputs: tuple[Array, Array]) -> tuple[Carry, Array]:
            x_t, m_t = inputs  # (*batch, F), (*batch,)
            new_carry, y_t = cell.step(params, carry, x_t)
            keep = jax.tree.map(lambda n, o: jnp.where(_expand(m_t, n), n, o), new_carry, carry)
            return keep, jnp.where(_expand(m_t, y_t), y_t, jnp.zeros_like(y_t))

        carry, ys = lax.scan(masked_body, carry, (xs, jnp.moveaxis(mask, -1, 0)), reverse=reverse)
    return jnp.moveaxis(ys, 0, -2), carry  # (*batch, T, H)


def _last_output(ys: Array, mask: Array | None, reverse: bool) -> Array:
    """The output of the last step processed: ``(B, T, H) -> (B, H)``."""
    if mask is None:
        return ys[:, 0] if reverse else ys[:, -1]
    steps = mask.shape[1]
    # Going forward the last real step is the largest real index; going back, the smallest.
    # A sequence without real steps has only zero outputs, so any index gives its zeros.
    index = jnp.argmax(mask, axis=1) if reverse else steps - 1 - jnp.argmax(mask[:, ::-1], axis=1)
    return jnp.take_along_axis(ys, index.reshape(-1, 1, 1), axis=1)[:, 0]  # (B, H)


@described("nn.RNN")
def RNN(cell: Cell, *, return_sequences: bool = True, reverse: bool = False) -> Layer:
    """A recurrent layer: runs ``cell`` over the time axis with ``jax.lax.scan``.

    ``(B, T, F) -> (B, T, H)``, or ``(B, H)`` with ``return_sequences=False`` (the last output).
    The layer is of the cell's kind: ``RNN(LSTM(8))`` is an ``"lstm"`` layer (``lstm_0`` in a
    ``serial``) whose params are the cell's, ``{"w_i", "w_h", "b"}``; no state. The carry starts
    at zero for every sequence; use :func:`scan_cell` to pass another or to read the final one.

    ``apply`` accepts ``x`` or a pair ``(x, mask)``, with ``mask`` a ``(B, T)`` bool array, True
    for real steps: masked steps keep the carry and output zeros, and the last output is that of
    the last real step processed (with ``reverse``, the first real step). ``init`` takes the
    shape of ``x`` alone. For both directions at once, see :func:`Bidirectional`.

    Args:
      cell: a :class:`Cell`, such as ``LSTM(8)``.
      return_sequences: return every step's output ``(B, T, H)``; if False, the last ``(B, H)``.
      reverse: process the sequence from its end; outputs stay aligned with their inputs.

    Raises:
      TypeError: at construction, if ``cell`` is not a :class:`Cell` or a flag is not a bool;
        in ``apply``, for a malformed ``(x, mask)`` input or a mask that is not bool.
      ShapeError: at ``init`` or trace time, if the input is not ``(batch, time, in_features)``
        or the mask is not ``(batch, time)``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> layer = RNN(LSTM(8), return_sequences=False)
      >>> out_shape, params, state = layer.init(jax.random.key(0), (2, 5, 3))
      >>> out_shape, sorted(params)
      ((2, 8), ['b', 'w_h', 'w_i'])
      >>> mask = jnp.array([[True] * 5, [True, True, True, False, False]])
      >>> layer.apply(params, state, (jnp.ones((2, 5, 3)), mask))[0].shape
      (2, 8)
    """
    if not isinstance(cell, Cell):
        hint = " (did you pass a constructor without calling it?)" if callable(cell) else ""
        raise TypeError(
            f"rnn: cell must be a jaxnet Cell such as LSTM(8), got {type(cell).__name__}{hint}"
        )
    flag(return_sequences, layer="rnn", argument="return_sequences")
    flag(reverse, layer="rnn", argument="reverse")
    name = cell.name

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer=name)
        in_features = shape[2] if len(shape) == 3 else None
        if in_features is None:
            raise ShapeError(
                f"expected input (batch, time, features) with known features, "
                f"got {format_shape(shape)}",
                root=name,
            )
        batch, time = shape[:2]
        params = cell.init(key, in_features)
        out = (batch, time, cell.features) if return_sequences else (batch, cell.features)
        return out, params, {}

    def apply(
        params: Params, state: State, x: Array, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, State]:
        x, mask = split_input(x, layer=name)
        in_features = None if cell.in_features is None else cell.in_features(params)
        if x.ndim != 3 or in_features not in (None, x.shape[2]):
            width = "features" if in_features is None else in_features
            raise ShapeError(
                f"expected input (batch, time, {width}), got {format_shape(x.shape)}", root=name
            )
        if mask is not None:
            mask = check_mask(mask, tuple(x.shape[:2]), layer=name)
        ys, _ = scan_cell(cell, params, x, mask=mask, reverse=reverse)  # (B, T, H)
        return (ys if return_sequences else _last_output(ys, mask, reverse)), state

    return Layer(init, apply, name)


# ----------------------------------------------------------------------------- both directions

_COMBINE = ("concat", "sum")
_DIRECTIONS = ("forward", "backward")
_SEQUENCE = "(batch, time, features)"


def _sequence_layer(layer: Any, argument: str) -> Layer:
    """``layer`` if it is a Layer that runs forward in time; else a clear error."""
    if isinstance(layer, Cell):
        raise TypeError(
            f"bidirectional: {argument} must be a jaxnet Layer such as RNN(LSTM(8)), got Cell "
            f"{layer.name!r}; wrap it: RNN(cell)"
        )
    if not isinstance(layer, Layer):
        hint = " (did you pass a constructor without calling it?)" if callable(layer) else ""
        raise TypeError(
            f"bidirectional: {argument} must be a jaxnet Layer such as RNN(LSTM(8)), "
            f"got {type(layer).__name__}{hint}"
        )
    spec = layer.spec
    if spec is not None and spec.constructor == "nn.RNN" and spec.arguments.get("reverse"):
        raise ValueError(
            f"bidirectional: {argument} is an RNN with reverse=True; pass it without reverse, "
            "since Bidirectional reverses the sequence for the backward layer itself"
        )
    return layer


def _check_direction_shapes(
    input_shape: Shape, forward: Shape, backward: Shape, combine: str
) -> None:
    """Each direction maps ``(B, T, F)`` to ``(B, T, H)`` or ``(B, H)``, and the two outputs
    can be combined; else a ShapeError naming what each direction gives."""
    for name, out in zip(_DIRECTIONS, (forward, backward), strict=True):
        sequence = len(out) == 3 and out[:2] == input_shape[:2]
        if out[:1] != input_shape[:1] or not (len(out) == 2 or sequence):
            raise ShapeError(
                f"the {name} layer must map {_SEQUENCE} to (batch, time, H) or (batch, H), "
                f"but maps {format_shape(input_shape)} to {format_shape(out)}",
                root="bidirectional",
            )
    same = forward[:-1] == backward[:-1] if combine == "concat" else forward == backward
    if len(forward) != len(backward) or not same:
        need = "all but the last axis equal" if combine == "concat" else "equal shapes"
        raise ShapeError(
            f"combine={combine!r} needs {need}; the forward layer gives "
            f"{format_shape(forward)}, the backward layer {format_shape(backward)}",
            root="bidirectional",
        )


@described("nn.Bidirectional")
def Bidirectional(
    forward: Layer, backward: Layer | None = None, *, combine: str = "concat"
) -> Layer:
    """Run a sequence layer forward and backward in time and join the two outputs.

    ``y = combine(forward(x), flip(backward(flip(x))))``, where ``flip`` reverses the time axis:
    the backward layer reads the sequence from its last step to its first, and its outputs are
    put back at the positions of their inputs, so ``y[:, t]`` holds what the forward layer saw up
    to step ``t`` and what the backward layer saw from the end down to ``t``. A layer that returns
    one output per sequence (``RNN(cell, return_sequences=False)``) is not flipped back: the
    backward layer's last output is the one at position 0, as in Keras's ``Bidirectional``.

    ``backward`` defaults to ``forward`` itself: a layer is two pure functions, so the same
    layer used twice gets two independent sets of params, ``{"forward": ..., "backward": ...}``
    (each direction's init key is folded with its name). ``Bidirectional(RNN(LSTM(8)))`` is
    Keras's ``Bidirectional(LSTM(8))``; ``jn.parallel(RNN(cell), RNN(cell, reverse=True))``
    computes the same thing, with params named after the cell (``lstm_0``, ``lstm_1``). Pass
    layers that run forward: an ``RNN(..., reverse=True)`` is refused, since it would undo the
    flip.

    ``apply`` accepts ``x`` or ``(x, mask)`` with a ``(B, T)`` bool mask, True for real steps.
    The backward layer gets the mask reversed too, so with an ``RNN`` padded steps are skipped
    in both directions and their outputs are zero; right-padded sequences are read backward from
    their last real step. ``jn.intermediates`` records the backward layer's output as it made it,
    in reversed time order.

    Args:
      forward: a layer mapping ``(B, T, F)`` to ``(B, T, H)`` or ``(B, H)``, such as
        ``RNN(LSTM(8))``.
      backward: the layer for the reversed sequence, with the same kind of output; ``None`` (the
        default) uses ``forward`` again, with params of its own.
      combine: ``"concat"`` joins the two outputs along the last axis (``(B, T, H_f + H_b)``);
        ``"sum"`` adds them (the two must then have the same shape).

    Returns:
      A layer of kind ``"bidirectional"`` with params ``{"forward": ..., "backward": ...}``.

    Raises:
      TypeError: at construction, if ``forward`` or ``backward`` is not a layer (a cell
        included); in ``apply``, for a malformed ``(x, mask)`` input or a mask that is not bool.
      ValueError: at construction, for an unknown ``combine`` word or an ``RNN`` with
        ``reverse=True``.
      ShapeError: at ``init`` or trace time, if the input is not ``(batch, time, features)``, a
        direction's output is neither ``(batch, time, H)`` nor ``(batch, H)``, or the two
        outputs cannot be combined; the mask is not ``(batch, time)``; or from a direction's own
        checks, with its path (``bidirectional/forward: ...``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> layer = Bidirectional(RNN(GRU(4)))
      >>> out_shape, params, state = layer.init(jax.random.key(0), (2, 5, 3))
      >>> out_shape, sorted(params), sorted(params["backward"])
      ((2, 5, 8), ['backward', 'forward'], ['b_h', 'b_i', 'w_h', 'w_i'])
      >>> layer.apply(params, state, jnp.ones((2, 5, 3)))[0].shape
      (2, 5, 8)
    """
    forward = _sequence_layer(forward, "forward")
    backward = forward if backward is None else _sequence_layer(backward, "backward")
    if combine not in _COMBINE:
        raise ValueError(f"bidirectional: combine must be one of {_COMBINE}, got {combine!r}")
    layers = (forward, backward)

    def init(key: Array, input_shape: Sequence[int | None]) -> tuple[Shape, Params, State]:
        shape = as_shape(input_shape, layer="bidirectional")
        if len(shape) != 3:
            raise ShapeError(
                f"expected input {_SEQUENCE}, got {format_shape(shape)}", root="bidirectional"
            )
        params: Params = {}
        state: State = {}
        outs: list[Shape] = []
        for name, layer in zip(_DIRECTIONS, layers, strict=True):
            out, p, s = _init_child(layer, name, "bidirectional", key, shape)
            outs.append(out)
            _put(params, name, p)
            _put(state, name, s)
        forward_out, backward_out = outs
        _check_direction_shapes(shape, forward_out, backward_out, combine)
        if combine == "sum":
            return forward_out, params, state
        widths = (forward_out[-1], backward_out[-1])
        width = None if None in widths else sum(w for w in widths if w is not None)
        return (*forward_out[:-1], width), params, state

    def run(
        params: Params,
        state: State,
        x: Array,
        key: Array | None,
        train: bool,
        outputs: dict[str, Array] | None,
    ) -> tuple[Array, State]:
        sequence, mask = split_input(x, layer="bidirectional")
        if sequence.ndim != 3:
            raise ShapeError(
                f"expected input {_SEQUENCE}, got {format_shape(sequence.shape)}",
                root="bidirectional",
            )
        _check_unexpected_children(_DIRECTIONS, "bidirectional", params, state)
        flipped = jnp.flip(sequence, axis=1)  # (B, T, F), step T-1 first
        inputs: tuple[Any, Any] = (sequence, flipped)
        if mask is not None:
            mask = check_mask(mask, tuple(sequence.shape[:2]), layer="bidirectional")
            inputs = ((sequence, mask), (flipped, jnp.flip(mask, axis=1)))
        ys: list[Array] = []
        new_state: State = {}
        for name, layer, direction_input in zip(_DIRECTIONS, layers, inputs, strict=True):
            y, s = _apply_child(
                layer, name, "bidirectional", params, state, direction_input, key, train, outputs
            )
            ys.append(y)
            _put(new_state, name, s)
        y_forward, y_backward = ys
        if y_backward.ndim == 3:
            y_backward = jnp.flip(y_backward, axis=1)  # back to the positions of the inputs
        _check_direction_shapes(sequence.shape, y_forward.shape, y_backward.shape, combine)
        if combine == "concat":
            return jnp.concatenate([y_forward, y_backward], axis=-1), new_state
        return y_forward + y_backward, new_state

    def sublayers(input_shape: Shape) -> list[tuple[str, Layer, Shape]]:
        shape = as_shape(input_shape, layer="bidirectional")
        return [(name, layer, shape) for name, layer in zip(_DIRECTIONS, layers, strict=True)]

    apply, capture = _apply_and_capture(run)
    return Layer(init, apply, "bidirectional", sublayers=sublayers, capture=capture)
