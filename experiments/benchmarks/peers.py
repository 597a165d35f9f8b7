"""The peers, each written the way its own documentation trains a model: Flax (linen and NNX),
Haiku, Equinox, PyTorch (eager and ``torch.compile``). Each is imported only when its case
runs, and a missing package skips it.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
from typing import Any

import jax
import jax.numpy as jnp
import optax

from experiments.benchmarks import measure
from experiments.benchmarks.cases import IMAGE, Case, make
from experiments.benchmarks.jax_impls import _cross_entropy, device_batches, functional_runner
from experiments.benchmarks.runner import Runner

# ----------------------------------------------------------------------------- Flax linen


def flax_linen(case: Case) -> Runner:
    import flax.linen as nn

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x: jax.Array) -> jax.Array:
            if case.arch == "cnn":
                x = x.reshape(x.shape[0], *IMAGE)
                for features, pool in zip(case.convs, case.pools(), strict=True):
                    x = nn.relu(nn.Conv(features, (3, 3))(x))
                    x = nn.max_pool(x, (2, 2), strides=(2, 2)) if pool else x
                x = x.reshape(x.shape[0], -1)
            else:
                for width in case.hidden:
                    x = nn.relu(nn.Dense(width)(x))
            return nn.Dense(case.num_classes)(x)

    net = Net()
    params = net.init(jax.random.key(0), jnp.zeros((1, case.in_features)))
    return functional_runner("Flax linen", case, params, net.apply, note="flax.linen, jax.jit")


# ----------------------------------------------------------------------------- Flax NNX


def flax_nnx(case: Case) -> Runner:
    from flax import nnx

    rngs = nnx.Rngs(0)
    if case.arch == "cnn":
        layers: list[Any] = [lambda x: x.reshape(x.shape[0], *IMAGE)]
        channels = IMAGE[-1]
        for features, pool in zip(case.convs, case.pools(), strict=True):
            layers += [nnx.Conv(channels, features, (3, 3), rngs=rngs), nnx.relu]
            layers += [lambda x: nnx.max_pool(x, (2, 2), strides=(2, 2))] if pool else []
            channels = features
        layers += [
            lambda x: x.reshape(x.shape[0], -1),
            nnx.Linear(case.flat_features, case.num_classes, rngs=rngs),
        ]
    else:
        layers, width = [], case.in_features
        for w in case.hidden:
            layers += [nnx.Linear(width, w, rngs=rngs), nnx.relu]
            width = w
        layers.append(nnx.Linear(width, case.num_classes, rngs=rngs))
    model = nnx.Sequential(*layers)
    optimizer = nnx.Optimizer(model, optax.sgd(case.learning_rate), wrt=nnx.Param)

    @nnx.jit
    def step(model: Any, optimizer: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        def loss_fn(model: Any) -> jax.Array:
            return _cross_entropy(model(x), y)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        return loss

    def call(carry: Any, x: jax.Array, y: jax.Array) -> Any:
        return carry, step(*carry, x, y)

    return Runner(
        "Flax NNX",
        call,
        (model, optimizer),
        device_batches(case),
        block=lambda carry: jax.block_until_ready(nnx.state(carry[0])),
        note="flax.nnx.Sequential, nnx.Optimizer, nnx.jit (mutates the model in place)",
    )


# ----------------------------------------------------------------------------- Haiku


def haiku(case: Case) -> Runner:
    import haiku as hk

    def forward(x: jax.Array) -> jax.Array:
        if case.arch == "cnn":
            x = x.reshape(x.shape[0], *IMAGE)
            for features, pool in zip(case.convs, case.pools(), strict=True):
                x = jax.nn.relu(hk.Conv2D(features, 3)(x))
                x = hk.max_pool(x, (1, 2, 2, 1), (1, 2, 2, 1), "VALID") if pool else x
            return hk.Linear(case.num_classes)(hk.Flatten()(x))
        return hk.nets.MLP([*case.hidden, case.num_classes])(x)  # ReLU between layers

    net = hk.without_apply_rng(hk.transform(forward))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, case.in_features)))
    return functional_runner("Haiku", case, params, net.apply, note="hk.transform, jax.jit")


# ----------------------------------------------------------------------------- Equinox


def equinox(case: Case) -> Runner:
    import equinox as eqx

    keys = iter(jax.random.split(jax.random.key(0), 8))
    if case.arch == "cnn":
        layers: list[Any] = [eqx.nn.Lambda(lambda x: x.reshape(1, *IMAGE[:2]))]  # (C, H, W)
        channels = IMAGE[-1]
        for features, pool in zip(case.convs, case.pools(), strict=True):
            conv = eqx.nn.Conv2d(channels, features, 3, padding=1, key=next(keys))
            layers += [conv, eqx.nn.Lambda(jax.nn.relu)]
            layers += [eqx.nn.MaxPool2d(2, 2)] if pool else []
            channels = features
        layers += [
            eqx.nn.Lambda(jnp.ravel),  # (C·H·W,): equinox flattens channels first
            eqx.nn.Linear(case.flat_features, case.num_classes, key=next(keys)),
        ]
        model: Any = eqx.nn.Sequential(layers)
    else:
        model = eqx.nn.MLP(
            case.in_features,
            case.num_classes,
            case.hidden[0],
            len(case.hidden),
            activation=jax.nn.relu,
            key=next(keys),
        )
    optimizer = optax.sgd(case.learning_rate)

    @eqx.filter_jit
    def step(model: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        def loss_fn(model: Any) -> jax.Array:
            return _cross_entropy(jax.vmap(model)(x), y)  # equinox layers see one example

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    def call(carry: Any, x: jax.Array, y: jax.Array) -> Any:
        model, opt_state, loss = step(*carry, x, y)
        return (model, opt_state), loss

    batches = device_batches(case)
    carry = (model, optimizer.init(eqx.filter(model, eqx.is_array)))

    def analysis() -> dict[str, Any]:
        return measure.xla_analysis(step, *runner.carry, *batches[0])

    runner = Runner(
        "Equinox",
        call,
        carry,
        batches,
        block=lambda carry: jax.block_until_ready(eqx.filter(carry, eqx.is_array)),
        analysis=analysis,
        note="eqx.nn, eqx.filter_jit (no donation: its default), vmap over the batch",
    )
    return runner


# ----------------------------------------------------------------------------- PyTorch


def _torch_model(case: Case) -> Any:
    import torch

    nn = torch.nn
    if case.arch == "cnn":
        layers: list[Any] = [nn.Unflatten(1, (IMAGE[-1], *IMAGE[:2]))]  # (B, C, H, W)
        channels = IMAGE[-1]
        for features, pool in zip(case.convs, case.pools(), strict=True):
            layers += [nn.Conv2d(channels, features, 3, padding=1), nn.ReLU()]
            layers += [nn.MaxPool2d(2)] if pool else []
            channels = features
        layers += [nn.Flatten(), nn.Linear(case.flat_features, case.num_classes)]
        return nn.Sequential(*layers)
    layers, width = [], case.in_features
    for w in case.hidden:
        layers += [nn.Linear(width, w), nn.ReLU()]
        width = w
    return nn.Sequential(*layers, nn.Linear(width, case.num_classes))


@functools.cache
def _torch_default_threads() -> int:
    """torch's own intra-op thread count, read before any runner changes it."""
    import torch

    return int(torch.get_num_threads())


def _torch_parts(case: Case, compiled: bool, threads: int | None) -> tuple[Any, Any, Any]:
    """The step ``step(x, y) -> loss`` (with ``step.model``), the batches, and torch.

    ``threads`` pins torch's intra-op threads for each step (``None``: torch's default). On a
    shared machine OpenMP's spinning threads can slow a small net down tenfold, so the suite
    also measures one thread.
    """
    import torch

    torch.manual_seed(0)
    default = _torch_default_threads()
    model = _torch_model(case)
    optimizer = torch.optim.SGD(model.parameters(), lr=case.learning_rate)
    forward = torch.compile(model) if compiled else model

    wanted = threads or default

    def step(x: Any, y: Any) -> Any:
        if torch.get_num_threads() != wanted:  # another torch row may have changed it
            torch.set_num_threads(wanted)
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    step.model = model  # type: ignore[attr-defined]
    batches = [
        (torch.from_numpy(x.copy()), torch.from_numpy(y.astype("int64"))) for x, y in case.batches()
    ]
    return step, batches, torch


def torch_runner(case: Case, *, compiled: bool = False, threads: int | None = None) -> Runner:
    step, batches, torch = _torch_parts(case, compiled, threads)

    def call(carry: Any, x: Any, y: Any) -> Any:
        return carry, step(x, y)

    name = "PyTorch torch.compile" if compiled else "PyTorch eager"
    name += f", {threads} thread{'s' if threads > 1 else ''}" if threads else ""
    count = threads or _torch_default_threads()
    note = f"torch {torch.__version__}, {count} intra-op threads, torch.optim.SGD"
    if compiled:
        note += "; torch.compile(model) (inductor), the optimizer step eager"
    return Runner(
        name,
        call,
        None,
        batches,
        block=lambda carry: None,  # eager CPU kernels have finished when they return
        analysis=None if compiled else lambda: _torch_rss_in_subprocess(case.name, threads),
        note=note,
    )


def _torch_rss(case_name: str, threads: int | None, steps: int = 3) -> tuple[int, str]:
    """The peak-RSS rise over ``steps`` steps after a first one (which loads code and starts
    threads), plus the bytes of the params and the batch: what XLA's buffer count covers."""
    step, batches, _ = _torch_parts(make(case_name), compiled=False, threads=threads)
    step(*batches[0])
    grown, source = measure.peak_rss_growth(
        lambda: [step(*batches[i % len(batches)]) for i in range(steps)]
    )
    held = sum(p.numel() * p.element_size() for p in step.model.parameters())
    held += sum(t.numel() * t.element_size() for t in batches[0])
    return grown + held, source


def _torch_rss_in_subprocess(case_name: str, threads: int | None) -> dict[str, Any]:
    """:func:`_torch_rss` in a fresh Python whose glibc maps every allocation on its own
    (``MALLOC_MMAP_THRESHOLD_=0``), so freed memory leaves the RSS and the peak is the peak."""
    root = pathlib.Path(__file__).resolve().parents[2]
    code = (
        "import json; from experiments.benchmarks.peers import _torch_rss; "
        f"print(json.dumps(_torch_rss({case_name!r}, {threads!r})))"
    )
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="0", PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    grown, source = json.loads(done.stdout.strip().splitlines()[-1])
    return {"memory_bytes": grown, "memory_source": source}
