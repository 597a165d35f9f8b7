"""The benchmark cases: the same net, data, batch size and optimizer for every implementation.

Every implementation trains ``net`` with softmax cross-entropy on integer labels and plain SGD
(``u ← u − η∇L``), on the case's training split, in float32.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

import jaxnet as jn

IMAGE = (8, 8, 1)
"""The digits as images: 8×8 pixels, one channel (channels last)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
      name: the ``--cases`` name.
      description: one line for the report.
      arch: ``"mlp"`` (``hidden`` widths, ReLU) or ``"cnn"`` (``convs``).
      hidden: the MLP's hidden widths.
      convs: the CNN's 3×3 "SAME" convolutions' output channels, each followed by ReLU and a
        2×2 max pool while the image is at least 2 pixels wide; then Flatten and Dense.
      batch_size: examples per step.
      learning_rate: SGD's η.
      data: the data set (``x`` of shape ``(n, 64)``, integer labels).
    """

    name: str
    description: str
    arch: str
    hidden: tuple[int, ...]
    batch_size: int
    learning_rate: float
    data: jn.data.Dataset
    convs: tuple[int, ...] = ()

    def pools(self) -> list[bool]:
        """Whether each conv block pools (it stops once the image is one pixel wide)."""
        side, out = IMAGE[0], []
        for _ in self.convs:
            out.append(side >= 2)
            side = side // 2 if side >= 2 else side
        return out

    @property
    def flat_features(self) -> int:
        """The CNN's features after Flatten."""
        side = IMAGE[0] // 2 ** sum(self.pools())
        return side * side * self.convs[-1]

    @property
    def in_features(self) -> int:
        return int(np.prod(self.data.feature_shape))

    @property
    def num_classes(self) -> int:
        return int(self.data.num_classes or 0)

    @property
    def steps_per_epoch(self) -> int:
        return self.data.num_train // self.batch_size

    def batches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """One epoch's batches in a fixed shuffled order: what the step-by-step loops iterate."""
        order = np.random.default_rng(0).permutation(self.data.num_train)
        x, y = self.data.x_train[order], self.data.y_train[order]
        b = self.batch_size
        return [
            (x[i * b : (i + 1) * b], y[i * b : (i + 1) * b]) for i in range(self.steps_per_epoch)
        ]


def _synthetic(n: int, features: int, classes: int) -> jn.data.Dataset:
    """Gaussian inputs labelled by a random linear map: learnable, any size, no download."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = np.argmax(x @ rng.standard_normal((features, classes)), axis=1).astype(np.int32)
    return jn.data.from_arrays(x, y, num_classes=classes, test_fraction=0.1, seed=0)


def make(name: str) -> Case:
    """The case called ``name`` (``small``, ``wide``, ``cnn``, or ``tiny`` for tests)."""
    if name == "small":
        digits = jn.data.load("digits")
        return Case(
            name, "digits MLP 64→128→128→10, batch 128", "mlp", (128, 128), 128, 0.1, digits
        )
    if name == "wide":
        data = _synthetic(9 * 1024 + 1024, 64, 10)
        return Case(name, "MLP 64→1024→1024→10, batch 1024", "mlp", (1024, 1024), 1024, 0.1, data)
    if name == "cnn":
        convs, batch = _digits_cnn_config()
        digits = jn.data.load("digits")
        blocks = "-".join(f"conv{c}-pool" for c in convs)
        return Case(
            name,
            f"the digits-cnn recipe's net ({blocks}-dense10), batch {batch}",
            "cnn",
            (),
            batch,
            0.1,
            digits,
            convs,
        )
    if name == "tiny":
        digits = jn.data.load("digits")
        return Case(
            name, "digits MLP 64→16→10, batch 32 (for tests)", "mlp", (16,), 32, 0.1, digits
        )
    raise ValueError(f"unknown case {name!r} (known: small, wide, cnn, tiny)")


CASES = ("small", "wide", "cnn", "tiny")


def _digits_cnn_config() -> tuple[tuple[int, ...], int]:
    """The digits-cnn recipe's channels (``width·2^block``) and batch size, or the same
    defaults (32 then 64 channels, batch 32) while the recipe does not exist."""
    width, depth, batch = 32, 2, 32
    if "digits-cnn" in jn.recipes.names():
        config = jn.recipes.make_config("digits-cnn")
        width, depth, batch = config["width"], config["depth"], config["batch_size"]
    return tuple(width * 2**block for block in range(depth)), batch


def jaxnet_net(case: Case) -> tuple[jn.Layer | None, str]:
    """The case's net in jaxnet and where it came from; ``(None, reason)`` when the layers it
    needs are not exported yet."""
    if case.arch == "mlp":
        return jn.serial(
            *[layer for w in case.hidden for layer in (jn.nn.Dense(w), jn.nn.Relu)],
            jn.nn.Dense(case.num_classes),
        ), "jn.serial of jn.nn.Dense and jn.nn.Relu"
    missing = [n for n in ("Conv", "MaxPool", "Flatten", "Reshape") if not hasattr(jn.nn, n)]
    if missing:
        return None, f"jn.nn does not export {', '.join(missing)} yet"
    spec = _cnn_from_layers(case)
    recipe, note = _digits_cnn_recipe(case, spec)
    return (recipe, note) if recipe is not None else (spec, note)


def _cnn_from_layers(case: Case) -> jn.Layer:
    layers: list[jn.Layer] = [jn.nn.Reshape(IMAGE)]
    for features, pool in zip(case.convs, case.pools(), strict=True):
        layers += [jn.nn.Conv(features, (3, 3)), jn.nn.Relu]
        layers += [jn.nn.MaxPool((2, 2))] if pool else []
    return jn.serial(*layers, jn.nn.Flatten, jn.nn.Dense(case.num_classes))


def _param_shapes(net: jn.Layer, input_shape: tuple[Any, ...]) -> list[tuple[int, ...]]:
    _, params, _ = jax.eval_shape(lambda k: net.init(k, input_shape), jax.random.key(0))
    return sorted(tuple(leaf.shape) for leaf in jax.tree.leaves(params))


def _digits_cnn_recipe(case: Case, spec: jn.Layer) -> tuple[jn.Layer | None, str]:
    """The ``digits-cnn`` recipe's net when it has the case's architecture (same parameter
    shapes); the peers implement that architecture, so another one could not be compared."""
    if "digits-cnn" not in jn.recipes.names():
        return None, "built from jn.nn layers (no digits-cnn recipe yet)"
    job = jn.recipes.build(jn.recipes.make_config("digits-cnn"))
    net = job.net
    if tuple(job.data.feature_shape) != (case.in_features,):  # the recipe reads images
        net = jn.serial(jn.nn.Reshape(tuple(job.data.feature_shape)), net)
    if _param_shapes(net, (None, case.in_features)) != _param_shapes(
        spec, (None, case.in_features)
    ):
        return None, "built from jn.nn layers (the digits-cnn recipe has another architecture)"
    return net, "the digits-cnn recipe's net"
