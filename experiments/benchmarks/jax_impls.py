"""jaxnet, the hand-written pure-JAX baseline (a step and a fused ``lax.scan`` epoch), and stax.

Every functional implementation shares one step, written as a JAX user writes it by hand:
a params pytree, ``jax.jit(jax.value_and_grad)``, optax, and the params and optimizer state
donated so XLA updates them in place. Only the ``apply(params, x)`` differs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import jaxnet as jn
from experiments.benchmarks import measure
from experiments.benchmarks.cases import IMAGE, Case, jaxnet_net
from experiments.benchmarks.runner import Runner

Apply = Callable[[Any, Any], Any]


def device_batches(case: Case) -> list[tuple[jax.Array, jax.Array]]:
    return [(jax.device_put(x), jax.device_put(y)) for x, y in case.batches()]


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.losses.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def functional_runner(
    name: str, case: Case, params: Any, apply: Apply, *, fused: bool = False, note: str = ""
) -> Runner:
    """A runner for ``apply(params, x) -> logits``: the hand-written jitted step with optax
    and donation, and with ``fused`` the same step scanned over an epoch shuffled on device."""
    optimizer = optax.sgd(case.learning_rate)

    def loss_fn(params: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        return _cross_entropy(apply(params, x), y)

    def step(params: Any, opt_state: Any, x: jax.Array, y: jax.Array) -> Any:
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    jstep = jax.jit(step, donate_argnums=(0, 1))

    def call(carry: Any, x: jax.Array, y: jax.Array) -> Any:
        params, opt_state, loss = jstep(*carry, x, y)
        return (params, opt_state), loss

    steps, b = case.steps_per_epoch, case.batch_size

    def epoch(params: Any, opt_state: Any, x: jax.Array, y: jax.Array, e: jax.Array) -> Any:
        order = jax.random.permutation(jax.random.fold_in(jax.random.key(0), e), x.shape[0])
        order = order[: steps * b]
        xs = x[order].reshape(steps, b, *x.shape[1:])  # (S, B, ...)
        ys = y[order].reshape(steps, b)  # (S, B)

        def body(carry: Any, batch: Any) -> Any:
            params, opt_state, loss = step(*carry, *batch)
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), (xs, ys))
        return params, opt_state, losses

    jepoch = jax.jit(epoch, donate_argnums=(0, 1))

    def call_epoch(carry: Any, x: jax.Array, y: jax.Array, e: jax.Array) -> Any:
        params, opt_state, losses = jepoch(*carry, x, y, e)
        return (params, opt_state), losses

    batches = device_batches(case)
    carry = (params, optimizer.init(params))

    def analysis() -> dict[str, Any]:
        return measure.xla_analysis(jstep, *runner.carry, *batches[0])

    train = (jax.device_put(case.data.x_train), jax.device_put(case.data.y_train))
    runner = Runner(
        name,
        call,
        carry,
        batches,
        epoch=call_epoch if fused else None,
        train=train if fused else None,
        analysis=analysis,
        note=note,
    )
    return runner


# ----------------------------------------------------------------------------- pure JAX


def _dense_init(key: jax.Array, n_in: int, n_out: int) -> dict[str, jax.Array]:
    w = jax.random.normal(key, (n_in, n_out), jnp.float32) / jnp.sqrt(n_in)  # LeCun normal
    return {"w": w, "b": jnp.zeros((n_out,), jnp.float32)}


def _conv_init(key: jax.Array, k: int, c_in: int, c_out: int) -> dict[str, jax.Array]:
    w = jax.random.normal(key, (k, k, c_in, c_out), jnp.float32) / jnp.sqrt(k * k * c_in)
    return {"w": w, "b": jnp.zeros((c_out,), jnp.float32)}


def pure_jax_params(case: Case) -> dict[str, Any]:
    keys = iter(jax.random.split(jax.random.key(0), 8))
    if case.arch == "mlp":
        sizes = (case.in_features, *case.hidden, case.num_classes)
        return {
            f"dense_{i}": _dense_init(next(keys), a, b)
            for i, (a, b) in enumerate(itertools.pairwise(sizes))
        }
    params: dict[str, Any] = {}
    channels = IMAGE[-1]
    for i, features in enumerate(case.convs):
        params[f"conv_{i}"] = _conv_init(next(keys), 3, channels, features)
        channels = features
    params["dense_0"] = _dense_init(next(keys), case.flat_features, case.num_classes)
    return params


def pure_jax_apply(case: Case, params: dict[str, Any], x: jax.Array) -> jax.Array:
    """The MLP (ReLU) or the CNN (conv, ReLU, 2×2 max pool; dense), written with jax.lax."""
    if case.arch == "cnn":
        h = x.reshape(x.shape[0], *IMAGE)  # (B, 8, 8, 1)
        for i, pool in enumerate(case.pools()):
            p = params[f"conv_{i}"]
            h = jax.lax.conv_general_dilated(
                h, p["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
            h = jax.nn.relu(h + p["b"].reshape(1, 1, 1, -1))  # (B, H, W, C)
            if pool:
                window = (1, 2, 2, 1)
                h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, window, window, "VALID")
        h = h.reshape(h.shape[0], -1)  # (B, H·W·C)
        return h @ params["dense_0"]["w"] + params["dense_0"]["b"][None, :]
    n = len(params)
    h = x
    for i in range(n):
        h = h @ params[f"dense_{i}"]["w"] + params[f"dense_{i}"]["b"][None, :]
        h = jax.nn.relu(h) if i < n - 1 else h
    return h


def pure_jax(case: Case) -> Runner:
    return functional_runner(
        "pure JAX (hand-written)",
        case,
        pure_jax_params(case),
        functools.partial(pure_jax_apply, case),
        fused=True,
        note="params dict, jax.jit(jax.value_and_grad), optax.sgd, donated buffers; "
        "fused: the same step in a lax.scan over an epoch shuffled on device",
    )


# ----------------------------------------------------------------------------- jaxnet


def jaxnet(case: Case) -> Runner | str:
    """jaxnet's public training path: ``make_train_step``, ``make_epoch`` and ``fit``."""
    net, source = jaxnet_net(case)
    if net is None:
        return source
    optimizer = optax.sgd(case.learning_rate)
    loss = jn.losses.softmax_cross_entropy
    ts = jn.train.TrainState.create(net, optimizer, (None, case.in_features), key=jax.random.key(0))
    train_step = jn.train.make_train_step(net, loss, optimizer)
    jstep = jax.jit(train_step, donate_argnums=0)
    jepoch = jax.jit(jn.train.make_epoch(train_step, case.batch_size), donate_argnums=0)

    def call(ts: Any, x: jax.Array, y: jax.Array) -> Any:
        ts, metrics = jstep(ts, (x, y))
        return ts, metrics["loss"]

    def call_epoch(ts: Any, x: jax.Array, y: jax.Array, e: jax.Array) -> Any:
        ts, metrics, _ = jepoch(ts, x, y, e)
        return ts, metrics["loss"]

    def fit(epochs: int) -> list[float]:
        result = jn.train.fit(
            net,
            case.data,
            optimizer=optimizer,
            loss=loss,
            epochs=epochs,
            batch_size=case.batch_size,
            progress=False,
        )
        return [row["seconds"] for row in result.history]

    batches = device_batches(case)

    def analysis() -> dict[str, Any]:
        return measure.xla_analysis(jstep, runner.carry, batches[0])

    train = (jax.device_put(case.data.x_train), jax.device_put(case.data.y_train))
    runner = Runner(
        "jaxnet",
        call,
        ts,
        batches,
        epoch=call_epoch,
        train=train,
        fit=fit,
        analysis=analysis,
        note=f"{source}; jn.train.make_train_step / make_epoch / fit",
    )
    return runner


# ----------------------------------------------------------------------------- stax


def stax(case: Case) -> Runner:
    from jax.example_libraries import stax as s

    if case.arch == "mlp":
        layers = [layer for w in case.hidden for layer in (s.Dense(w), s.Relu)]
        init, apply = s.serial(*layers, s.Dense(case.num_classes))
        shape: tuple[int, ...] = (-1, case.in_features)
    else:
        layers = []
        for features, pool in zip(case.convs, case.pools(), strict=True):
            layers += [s.Conv(features, (3, 3), padding="SAME"), s.Relu]
            layers += [s.MaxPool((2, 2), strides=(2, 2))] if pool else []
        init, inner = s.serial(*layers, s.Flatten, s.Dense(case.num_classes))
        apply = functools.partial(_reshaped, inner)
        shape = (-1, *IMAGE)
    _, params = init(jax.random.key(0), shape)
    return functional_runner("stax", case, params, apply, note="jax.example_libraries.stax")


def _reshaped(apply: Apply, params: Any, x: jax.Array) -> jax.Array:
    return apply(params, x.reshape(x.shape[0], *IMAGE))
