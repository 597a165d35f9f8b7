"""Independent NumPy references for recurrent cells and attention, in float64 with explicit loops.

The cells are written from the equations of PyTorch's documentation (``torch.nn.RNN``, ``LSTM``,
``GRU``), gate by gate, one example and one time step at a time; ``run`` loops over time in
either direction, with masks; ``attention`` loops over examples, heads and query positions.
"""

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _f64(params):
    return {name: np.asarray(value, np.float64) for name, value in params.items()}


def _gate(w, index, size):
    """Columns ``index·size : (index+1)·size`` of ``w``: one gate's block."""
    return w[..., index * size : (index + 1) * size]


# ----------------------------------------------------------------------------- cells: one example


def simple_rnn_step(params, carry, x_t, activation=np.tanh):
    p = _f64(params)
    h = carry["h"]
    h_new = activation(x_t @ p["w_i"] + h @ p["w_h"] + p["b"])
    return {"h": h_new}, h_new


def lstm_step(params, carry, x_t):
    p = _f64(params)
    size = p["w_h"].shape[0]
    h, c = carry["h"], carry["c"]

    def pre(index):  # gates in PyTorch's order: i, f, g, o
        return (
            x_t @ _gate(p["w_i"], index, size)
            + h @ _gate(p["w_h"], index, size)
            + _gate(p["b"], index, size)
        )

    i, f, g, o = sigmoid(pre(0)), sigmoid(pre(1)), np.tanh(pre(2)), sigmoid(pre(3))
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return {"h": h_new, "c": c_new}, h_new


def gru_step(params, carry, x_t):
    p = _f64(params)
    size = p["w_h"].shape[0]
    h = carry["h"]

    def a(index):  # input side, gates r, z, n
        return x_t @ _gate(p["w_i"], index, size) + _gate(p["b_i"], index, size)

    def u(index):  # hidden side
        return h @ _gate(p["w_h"], index, size) + _gate(p["b_h"], index, size)

    r = sigmoid(a(0) + u(0))
    z = sigmoid(a(1) + u(1))
    n = np.tanh(a(2) + r * u(2))
    h_new = (1.0 - z) * n + z * h
    return {"h": h_new}, h_new


STEPS = {"simple_rnn": simple_rnn_step, "lstm": lstm_step, "gru": gru_step}
CARRIES = {"simple_rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}


# ----------------------------------------------------------------------------- running over time


def run(kind, params, x, *, mask=None, reverse=False, return_sequences=True):
    """The layer ``RNN(<kind>(H), ...)``: loops over examples and time steps.

    Returns ``(outputs, final_carries)``: outputs ``(B, T, H)`` or ``(B, H)``; one carry per
    example.
    """
    x = np.asarray(x, np.float64)
    size = np.asarray(params["w_h"]).shape[0]
    batch, steps, _ = x.shape
    outputs = np.zeros((batch, steps, size))
    last = np.zeros((batch, size))
    finals = []
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for b in range(batch):
        carry = {name: np.zeros(size) for name in CARRIES[kind]}
        for t in order:
            if mask is not None and not mask[b, t]:
                continue  # a padded step: carry unchanged, output stays zero
            carry, y = STEPS[kind](params, carry, x[b, t])
            outputs[b, t] = y
            last[b] = y
        finals.append(carry)
    return (outputs if return_sequences else last), finals


def rnn_reference(kind, **options):
    """A contract reference ``(params, x) -> y`` for ``RNN(<kind>(H), **options)``."""
    return lambda params, x: run(kind, params, x, **options)[0]


def bidirectional_reference(forward_kind, backward_kind=None, *, combine="concat", **options):
    """A contract reference for ``Bidirectional(RNN(<forward_kind>(H), **options),
    RNN(<backward_kind>(H'), **options), combine=...)``: the forward pass, and the pass over
    the sequence reversed in time with its outputs reversed back (a last output is not)."""

    def reference(params, x):
        forward = run(forward_kind, params["forward"], x, **options)[0]
        backward = run(backward_kind or forward_kind, params["backward"], x[:, ::-1], **options)[0]
        if backward.ndim == 3:
            backward = backward[:, ::-1]
        return (
            np.concatenate([forward, backward], axis=-1)
            if combine == "concat"
            else forward + backward
        )

    return reference


# ----------------------------------------------------------------------------- attention


def softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


def attention(params, x, *, num_heads, causal=False, mask=None):
    """Multi-head self-attention, one example, one head and one query position at a time."""
    x = np.asarray(x, np.float64)
    p = {name: _f64(value) for name, value in params.items()}
    batch, steps, _ = x.shape
    head = p["query"]["w"].shape[2]
    out = np.zeros((batch, steps, p["out"]["w"].shape[2]))

    def proj(name, b, t, n):
        return x[b, t] @ p[name]["w"][:, n, :] + p[name].get("b", np.zeros((num_heads, head)))[n]

    for b in range(batch):
        for t in range(steps):
            if mask is not None and not mask[b, t]:
                continue  # padded query: output zero
            y = p["out"].get("b", np.zeros(out.shape[2])).copy()
            for n in range(num_heads):
                q = proj("query", b, t, n)
                allowed = [
                    s
                    for s in range(steps)
                    if (not causal or s <= t) and (mask is None or mask[b, s])
                ]
                scores = np.array([q @ proj("key", b, s, n) / np.sqrt(head) for s in allowed])
                weights = softmax(scores)
                a = sum(w * proj("value", b, s, n) for w, s in zip(weights, allowed, strict=True))
                y += a @ p["out"]["w"][n]
            out[b, t] = y
    return out


# ----------------------------------------------------------------------------- PyTorch's layout


def torch_lstm(weight_ih, weight_hh, bias_ih, bias_hh, x):
    """``torch.nn.LSTM(batch_first=True)`` as its documentation writes it, one layer.

    ``weight_ih`` is ``(4H, in)`` = ``W_ii | W_if | W_ig | W_io`` stacked by rows, ``weight_hh``
    ``(4H, H)``; ``i = σ(W_ii x + b_ii + W_hi h + b_hi)`` and so on.
    """
    size = weight_hh.shape[1]
    batch, steps, _ = x.shape
    out = np.zeros((batch, steps, size))
    for b in range(batch):
        h, c = np.zeros(size), np.zeros(size)
        for t in range(steps):
            rows = [slice(k * size, (k + 1) * size) for k in range(4)]
            pre = [
                weight_ih[r] @ x[b, t] + bias_ih[r] + weight_hh[r] @ h + bias_hh[r] for r in rows
            ]
            i, f, g, o = sigmoid(pre[0]), sigmoid(pre[1]), np.tanh(pre[2]), sigmoid(pre[3])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[b, t] = h
    return out


def torch_gru(weight_ih, weight_hh, bias_ih, bias_hh, x):
    """``torch.nn.GRU(batch_first=True)`` as its documentation writes it, one layer.

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, ``h' = (1 − z) ⊙ n + z ⊙ h``.
    """
    size = weight_hh.shape[1]
    batch, steps, _ = x.shape
    out = np.zeros((batch, steps, size))
    for b in range(batch):
        h = np.zeros(size)
        for t in range(steps):
            r_, z_, n_ = (slice(k * size, (k + 1) * size) for k in range(3))
            r = sigmoid(weight_ih[r_] @ x[b, t] + bias_ih[r_] + weight_hh[r_] @ h + bias_hh[r_])
            z = sigmoid(weight_ih[z_] @ x[b, t] + bias_ih[z_] + weight_hh[z_] @ h + bias_hh[z_])
            n = np.tanh(
                weight_ih[n_] @ x[b, t] + bias_ih[n_] + r * (weight_hh[n_] @ h + bias_hh[n_])
            )
            h = (1.0 - z) * n + z * h
            out[b, t] = h
    return out


def torch_rnn(weight_ih, weight_hh, bias_ih, bias_hh, x):
    """``torch.nn.RNN(batch_first=True, nonlinearity="tanh")``: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``."""
    size = weight_hh.shape[1]
    batch, steps, _ = x.shape
    out = np.zeros((batch, steps, size))
    for b in range(batch):
        h = np.zeros(size)
        for t in range(steps):
            h = np.tanh(weight_ih @ x[b, t] + bias_ih + weight_hh @ h + bias_hh)
            out[b, t] = h
    return out


def torch_multihead_attention(
    in_proj_weight, in_proj_bias, out_weight, out_bias, x, num_heads, causal=False
):
    """``torch.nn.MultiheadAttention(E, heads, batch_first=True)(x, x, x)``, as documented.

    ``q = x W_qᵀ + b_q`` with ``W_q = in_proj_weight[:E]`` (then key, value); head ``n`` takes
    columns ``n·E/heads : (n+1)·E/heads``; the heads are concatenated and go through
    ``out_proj``: ``y = concat · out_weightᵀ + out_bias``.
    """
    batch, steps, embed = x.shape
    head = embed // num_heads
    q, k, v = (
        x @ in_proj_weight[j * embed : (j + 1) * embed].T
        + in_proj_bias[j * embed : (j + 1) * embed]
        for j in range(3)
    )
    concat = np.zeros((batch, steps, embed))
    for b in range(batch):
        for n in range(num_heads):
            cols = slice(n * head, (n + 1) * head)
            for t in range(steps):
                allowed = [s for s in range(steps) if not causal or s <= t]
                w = softmax(
                    np.array([q[b, t, cols] @ k[b, s, cols] / np.sqrt(head) for s in allowed])
                )
                concat[b, t, cols] = sum(
                    wi * v[b, s, cols] for wi, s in zip(w, allowed, strict=True)
                )
    return concat @ out_weight.T + out_bias
