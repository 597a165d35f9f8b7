"""Independent NumPy references for convolution and pooling, with explicit loops, in float64.

Inputs are channels-last, batch-first: ``(B, *spatial, C)`` with 1 to 3 spatial axes. Every
function loops over output positions and window taps one at a time, so that it reads like the
definition; it shares no code with ``jaxnet``.
"""

import numpy as np


def _per_axis(value, ndim):
    return (value,) * ndim if isinstance(value, int) else tuple(value)


def same_pads(size, span, stride):
    """TensorFlow's SAME rule: ceil(size / stride) outputs; the odd padding entry goes last."""
    out = -(-size // stride)
    total = max((out - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def pads_for(padding, spatial, spans, strides):
    """``((low, high), ...)`` per spatial axis, for a padding word, an int or per-axis entries."""
    if isinstance(padding, str):
        if padding.upper() == "VALID":
            return tuple((0, 0) for _ in spatial)
        return tuple(same_pads(n, k, s) for n, k, s in zip(spatial, spans, strides, strict=True))
    if isinstance(padding, int):
        return tuple((padding, padding) for _ in spatial)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def conv(params, x, *, strides=1, padding="SAME", dilation=1, groups=1):
    """y[b, o, f] = b[f] + Σ_k Σ_c x_pad[b, o·s + k·d, g·C_g + c] · w[k, c, f], g = f // F_g."""
    w = np.asarray(params["w"], np.float64)
    x = np.asarray(x, np.float64)
    kernel, group_channels, features = w.shape[:-2], w.shape[-2], w.shape[-1]
    ndim = len(kernel)
    strides, dilation = _per_axis(strides, ndim), _per_axis(dilation, ndim)
    bias = np.asarray(params.get("b", np.zeros(features)), np.float64)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    pads = pads_for(padding, x.shape[1:-1], spans, strides)
    padded = np.zeros(
        (
            x.shape[0],
            *(n + lo + hi for n, (lo, hi) in zip(x.shape[1:-1], pads, strict=True)),
            x.shape[-1],
        )
    )
    for index in np.ndindex(*x.shape):
        b, *position, c = index
        padded[(b, *(p + lo for p, (lo, _) in zip(position, pads, strict=True)), c)] = x[index]
    out_spatial = [
        (n - k) // s + 1 for n, k, s in zip(padded.shape[1:-1], spans, strides, strict=True)
    ]
    features_per_group = features // groups
    out = np.zeros((x.shape[0], *out_spatial, features))
    for b in range(x.shape[0]):
        for o in np.ndindex(*out_spatial):
            for f in range(features):
                g = f // features_per_group
                total = bias[f]
                for k in np.ndindex(*kernel):
                    tap = tuple(
                        oi * s + ki * d
                        for oi, ki, s, d in zip(o, k, strides, dilation, strict=True)
                    )
                    for c in range(group_channels):
                        total += padded[(b, *tap, g * group_channels + c)] * w[(*k, c, f)]
                out[(b, *o, f)] = total
    return out


def conv_transpose(params, x, *, strides=1, padding="SAME", dilation=1):
    """Scatter-add: each input entry adds value × kernel to its output window, s apart.

    The full output has (n − 1)·s + span entries per axis; SAME keeps n·s of them, dropping
    (span − s) // 2 in front; VALID keeps all, zero-extended to n·s; (low, high) drops low in
    front and high at the end.
    """
    w = np.asarray(params["w"], np.float64)
    x = np.asarray(x, np.float64)
    kernel, features = w.shape[:-2], w.shape[-1]
    ndim = len(kernel)
    strides, dilation = _per_axis(strides, ndim), _per_axis(dilation, ndim)
    spatial = x.shape[1:-1]
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    full_spatial = [(n - 1) * s + k for n, k, s in zip(spatial, spans, strides, strict=True)]
    full = np.zeros((x.shape[0], *full_spatial, features))
    for index in np.ndindex(*x.shape):
        b, *i, c = index
        for k in np.ndindex(*kernel):
            at = tuple(
                ii * s + ki * d for ii, ki, s, d in zip(i, k, strides, dilation, strict=True)
            )
            for f in range(features):
                full[(b, *at, f)] += x[index] * w[(*k, c, f)]
    crops = []  # (first kept entry, number kept) per axis
    for axis, (n, k, s) in enumerate(zip(spatial, spans, strides, strict=True)):
        if isinstance(padding, str) and padding.upper() == "SAME":
            crops.append((max(k - s, 0) // 2, n * s))
        elif isinstance(padding, str):
            crops.append((0, max(full_spatial[axis], n * s)))
        else:
            lo, hi = pads_for(padding, spatial, spans, strides)[axis]
            crops.append((lo, full_spatial[axis] - lo - hi))
    out = np.zeros((x.shape[0], *(size for _, size in crops), features))
    for index in np.ndindex(*out.shape):
        b, *o, f = index
        source = tuple(oi + start for oi, (start, _) in zip(o, crops, strict=True))
        if all(si < size for si, size in zip(source, full_spatial, strict=True)):
            out[index] = full[(b, *source, f)]
    bias = np.asarray(params.get("b", np.zeros(features)), np.float64)
    return out + bias


def _pool(x, window, strides, padding, reduce):
    """``reduce`` of the real entries (padding excluded) of each window, per channel."""
    x = np.asarray(x, np.float64)
    ndim = len(window)
    strides = window if strides is None else _per_axis(strides, ndim)
    spatial = x.shape[1:-1]
    pads = pads_for(padding, spatial, window, strides)
    out_spatial = [
        (n + lo + hi - w) // s + 1
        for n, (lo, hi), w, s in zip(spatial, pads, window, strides, strict=True)
    ]
    out = np.zeros((x.shape[0], *out_spatial, x.shape[-1]))
    for b in range(x.shape[0]):
        for o in np.ndindex(*out_spatial):
            for c in range(x.shape[-1]):
                values = []
                for k in np.ndindex(*window):
                    at = [
                        oi * s + ki - lo
                        for oi, ki, s, (lo, _) in zip(o, k, strides, pads, strict=True)
                    ]
                    if all(0 <= a < n for a, n in zip(at, spatial, strict=True)):
                        values.append(x[(b, *at, c)])
                out[(b, *o, c)] = reduce(values)
    return out


def max_pool(x, window, *, strides=None, padding="VALID"):
    """The largest real entry of each window."""
    return _pool(x, window, strides, padding, max)


def avg_pool(x, window, *, strides=None, padding="VALID"):
    """The mean of the real entries of each window: padding is not counted."""
    return _pool(x, window, strides, padding, lambda values: sum(values) / len(values))


def sum_pool(x, window, *, strides=None, padding="VALID"):
    """The sum of the real entries of each window (padding adds nothing)."""
    return _pool(x, window, strides, padding, sum)


def global_avg_pool(x):
    """The mean over every spatial axis, per example and channel: (B, *spatial, C) -> (B, C)."""
    x = np.asarray(x, np.float64)
    out = np.zeros((x.shape[0], x.shape[-1]))
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            entries = [x[(b, *position, c)] for position in np.ndindex(*x.shape[1:-1])]
            out[b, c] = sum(entries) / len(entries)
    return out
