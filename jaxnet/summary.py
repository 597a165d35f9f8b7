"""The model table: each layer's path, its shapes as the lecture writes them, its parameters."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxnet.core import Layer, as_shapes
from jaxnet.shapes import ShapeTree, is_shape, map_shapes


class SummaryRow(NamedTuple):
    """One leaf layer of the table."""

    path: str
    input_shape: ShapeTree
    output_shape: ShapeTree
    param_shapes: dict[str, tuple[int, ...]]
    param_count: int
    flops: float | None
    """XLA's estimate of the floating-point operations of one ``apply`` (unknown sizes count as
    1, so an unknown batch gives FLOPs per example); None if it cannot be estimated."""


def _dims(shape: ShapeTree) -> str:
    """``(1, 8) -> "1×8"``; an unknown size is written ``N``; a tuple of shapes
    ``(1×8, 1×4)`` and a dict ``{image: 1×8×8×1, age: 1×1}``."""
    if isinstance(shape, dict):
        return "{" + ", ".join(f"{key}: {_dims(part)}" for key, part in shape.items()) + "}"
    if not is_shape(shape):
        return "(" + ", ".join(_dims(part) for part in shape) + ")"
    return "×".join("N" if d is None else str(d) for d in shape)


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """``{"w": (8, 9), "b": (9,)}``, with ``/``-joined paths for nested params."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): tuple(leaf.shape)
        for path, leaf in leaves
    }


def _example(shape: tuple[int | None, ...], dtype: Any) -> jax.ShapeDtypeStruct:
    """An abstract input of ``shape``, an unknown size counted as 1."""
    return jax.ShapeDtypeStruct(tuple(1 if d is None else d for d in shape), dtype)


def _flops(layer: Layer, params: Any, state: Any, input_shape: ShapeTree) -> float | None:
    """XLA's FLOP count for one ``apply``, from the lowered (not compiled) program.

    The input dtype is not part of a shape, so float32 is tried first and int32 next (token
    ids for embeddings).
    """

    def forward(params: Any, state: Any, x: jax.Array) -> jax.Array:
        return layer.apply(params, state, x)[0]

    for dtype in (jnp.float32, jnp.int32):
        try:
            x = map_shapes(functools.partial(_example, dtype=dtype), input_shape)
            lowered = jax.jit(forward).lower(params, state, x)
        except (TypeError, ValueError):
            continue
        cost = lowered.cost_analysis()
        cost = cost[0] if isinstance(cost, list) else cost
        return float(cost.get("flops", 0.0)) if cost else None
    return None


def _leaf_row(layer: Layer, path: str, input_shape: ShapeTree) -> SummaryRow:
    found: list[ShapeTree] = []

    def abstract_init(key: jax.Array) -> Any:
        out_shape, params, state = layer.init(key, input_shape)
        found.append(out_shape)
        return params, state

    params, state = jax.eval_shape(abstract_init, jax.random.key(0))
    shapes = _flat_shapes(params)
    count = sum(math.prod(s) for s in shapes.values())
    flops = _flops(layer, params, state, input_shape)
    return SummaryRow(path, input_shape, found[0], shapes, count, flops)


def summary_rows(net: Layer, input_shape: ShapeTree) -> list[SummaryRow]:
    """The table's rows: one per leaf layer, in the order the input flows through them (a
    graph's nodes in the order they run).

    Runs ``init`` abstractly (``jax.eval_shape``): no parameters are created.
    """

    def walk(layer: Layer, path: str, shape: ShapeTree) -> list[SummaryRow]:
        if layer.sublayers is None:
            return [_leaf_row(layer, path, shape)]
        rows = []
        for name, child, child_shape in layer.sublayers(shape):
            rows += walk(child, f"{path}/{name}", child_shape)
        return rows

    return walk(net, net.name, as_shapes(input_shape, layer=net.name))


def _algebra(row: SummaryRow) -> str:
    """``1×8 · 8×9 → 1×9`` for a matrix ``w``, ``1×8×8×1 ∗ 3×3×1×4 → 1×8×8×4`` for a
    convolution kernel, ``1×9 → 1×9`` otherwise."""
    weight = row.param_shapes.get("w")
    middle = ""
    if weight is not None:
        middle = f" · {_dims(weight)}" if len(weight) == 2 else f" ∗ {_dims(weight)}"
    return f"{_dims(row.input_shape)}{middle} → {_dims(row.output_shape)}"


def _si(value: float | None) -> str:
    """``153 -> "153"``, ``2.5e6 -> "2.5M"``; ``"?"`` when unknown."""
    if value is None:
        return "?"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.0f}"


def summary(net: Layer, input_shape: ShapeTree, *, show: bool = True) -> str:
    """A table of the network's layers, shapes, parameter counts and FLOPs; printed unless
    ``show=False``.

    FLOPs are XLA's estimate for one forward pass at ``input_shape`` (an unknown batch counts as
    1, giving FLOPs per example); a dense layer costs about ``2 · in · out`` per example.

    Args:
      net: any layer.
      input_shape: the input shape, batch first (``None`` for an unknown batch); a tuple or
        dict of shapes for a net of several inputs.
      show: print the table as well as returning it.

    Returns:
      The table as a string.

    Example:
      >>> import jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
      >>> print(jn.summary(net, (1, 8), show=False))
      layer             shapes           params  flops
      serial/dense_0    1×8 · 8×9 → 1×9      81    153
      serial/sigmoid_0  1×9 → 1×9             0    ...
      serial/dense_1    1×9 · 9×4 → 1×4      40     76
      serial/softmax_0  1×4 → 1×4             0    ...
      total                                 121    ...
    """
    rows = summary_rows(net, input_shape)
    flops = [r.flops for r in rows]
    total_flops = None if None in flops else sum(f for f in flops if f is not None)
    table = [("layer", "shapes", "params", "flops")]
    table += [(r.path, _algebra(r), f"{r.param_count:,}", _si(r.flops)) for r in rows]
    table.append(("total", "", f"{sum(r.param_count for r in rows):,}", _si(total_flops)))
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    text = "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}".rstrip()
        for a, b, c, d in table
    )
    if show:
        print(text)
    return text
