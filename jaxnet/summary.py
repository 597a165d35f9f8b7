"""The model table: each layer's path, its shapes as the lecture writes them, its parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax

from jaxnet.core import Layer, Shape, as_shape


class SummaryRow(NamedTuple):
    """One leaf layer of the table."""

    path: str
    input_shape: Shape
    output_shape: Shape
    param_shapes: dict[str, tuple[int, ...]]
    param_count: int


def _dims(shape: Sequence[int | None]) -> str:
    """``(1, 8) -> "1×8"``; an unknown size is written ``N``."""
    return "×".join("N" if d is None else str(d) for d in shape)


def _flat_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """``{"w": (8, 9), "b": (9,)}``, with ``/``-joined paths for nested params."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    return {
        "/".join(str(getattr(k, "key", k)) for k in path): tuple(leaf.shape)
        for path, leaf in leaves
    }


def _leaf_row(layer: Layer, path: str, input_shape: Shape) -> SummaryRow:
    found: list[Shape] = []

    def abstract_init(key: jax.Array) -> Any:
        out_shape, params, _ = layer.init(key, input_shape)
        found.append(out_shape)
        return params

    params = jax.eval_shape(abstract_init, jax.random.key(0))
    shapes = _flat_shapes(params)
    count = sum(math.prod(s) for s in shapes.values())
    return SummaryRow(path, input_shape, found[0], shapes, count)


def summary_rows(net: Layer, input_shape: Sequence[int | None]) -> list[SummaryRow]:
    """The table's rows: one per leaf layer, in the order the input flows through them.

    Runs ``init`` abstractly (``jax.eval_shape``): no parameters are created.
    """

    def walk(layer: Layer, path: str, shape: Shape) -> list[SummaryRow]:
        if layer.sublayers is None:
            return [_leaf_row(layer, path, shape)]
        rows = []
        for name, child, child_shape in layer.sublayers(shape):
            rows += walk(child, f"{path}/{name}", child_shape)
        return rows

    return walk(net, net.name, as_shape(input_shape, layer=net.name))


def _algebra(row: SummaryRow) -> str:
    """``1×8 · 8×9 → 1×9`` for a layer with a matrix ``w``, ``1×9 → 1×9`` otherwise."""
    weight = row.param_shapes.get("w")
    middle = f" · {_dims(weight)}" if weight is not None and len(weight) == 2 else ""
    return f"{_dims(row.input_shape)}{middle} → {_dims(row.output_shape)}"


def summary(net: Layer, input_shape: Sequence[int | None], *, show: bool = True) -> str:
    """A table of the network's layers, shapes and parameter counts; printed unless ``show=False``.

    Args:
      net: any layer.
      input_shape: the input shape, batch first (``None`` for an unknown batch).
      show: print the table as well as returning it.

    Returns:
      The table as a string.

    Example:
      >>> import jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
      >>> print(jn.summary(net, (1, 8), show=False))
      layer             shapes           params
      serial/dense_0    1×8 · 8×9 → 1×9      81
      serial/sigmoid_0  1×9 → 1×9             0
      serial/dense_1    1×9 · 9×4 → 1×4      40
      serial/softmax_0  1×4 → 1×4             0
      total                                 121
    """
    rows = summary_rows(net, input_shape)
    table = [("layer", "shapes", "params")]
    table += [(r.path, _algebra(r), f"{r.param_count:,}") for r in rows]
    table.append(("total", "", f"{sum(r.param_count for r in rows):,}"))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    text = "\n".join(
        f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}".rstrip() for a, b, c in table
    )
    if show:
        print(text)
    return text
