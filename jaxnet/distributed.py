"""Data parallelism, sharded parameters and many hosts, on JAX's own machinery.

One code path from one CPU to many accelerators: a :class:`jax.sharding.Mesh` with a ``data``
axis (the batch is split along it; gradients are reduced by XLA) and a ``model`` axis (wide
parameters may be split along it by rules over their paths). Nothing here communicates by
itself: shardings are declared, and XLA inserts the collectives. Several hosts join through
``jax.distributed`` (:func:`initialize`); each process then runs the same program on its devices.
"""

from __future__ import annotations

import fnmatch
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxnet.core import param_paths

DATA, MODEL = "data", "model"
"""The mesh axis names: the batch is split along ``data``, wide parameters along ``model``."""

Rules = Mapping[str, PartitionSpec]
"""Sharding rules: a glob over parameter paths (``"*/w"``) to the ``PartitionSpec`` of those
parameters, e.g. ``{"dense_*/w": PartitionSpec(None, "model")}``. The first matching rule wins;
parameters that no rule matches are replicated."""


def make_mesh(devices: int | Sequence[Any] | None = None, *, model: int = 1) -> Mesh:
    """A ``(data, model)`` mesh over ``devices`` (a count of the visible devices, a list, or all).

    Args:
      devices: how many of ``jax.devices()`` to use, the devices themselves, or None for all.
      model: the size of the ``model`` axis; the ``data`` axis gets the rest.

    Raises:
      ValueError: if more devices are asked for than are visible, or they do not divide by
        ``model``.

    Example:
      >>> mesh = make_mesh(1)
      >>> dict(mesh.shape)
      {'data': 1, 'model': 1}
    """
    visible = jax.devices()
    if devices is None:
        chosen = visible
    elif isinstance(devices, int):
        if not 1 <= devices <= len(visible):
            raise ValueError(
                f"devices={devices} but {len(visible)} are visible ({visible[0].platform}); "
                "on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N"
            )
        chosen = visible[:devices]
    else:
        chosen = list(devices)
    if model < 1 or len(chosen) % model:
        raise ValueError(f"model={model} must be >= 1 and divide the {len(chosen)} devices")
    grid = np.array(chosen, dtype=object).reshape(len(chosen) // model, model)
    return Mesh(grid, (DATA, MODEL))


def _check_spec(spec: PartitionSpec, mesh: Mesh, where: str) -> None:
    for entry in spec:
        names = entry if isinstance(entry, tuple) else (entry,)
        for name in names:
            if name is not None and name not in mesh.axis_names:
                raise ValueError(
                    f"{where}: unknown mesh axis {name!r}; the mesh has axes {mesh.axis_names}"
                )


def param_specs(params: Any, mesh: Mesh, rules: Rules | None = None) -> Any:
    """The ``PartitionSpec`` of every parameter, by the first rule whose glob matches its path.

    Raises:
      ValueError: for a rule naming an unknown mesh axis, or a parameter whose sharded
        dimension does not divide by the mesh axis size.
    """
    rules = dict(rules or {})
    for pattern, spec in rules.items():
        _check_spec(spec, mesh, f"rule {pattern!r}")
    paths = iter(param_paths(params))

    def spec_for(leaf: Any) -> PartitionSpec:
        path = next(paths)
        spec = next((s for p, s in rules.items() if fnmatch.fnmatchcase(path, p)), PartitionSpec())
        for dim, entry in zip(leaf.shape, spec, strict=False):
            names = entry if isinstance(entry, tuple) else (entry,)
            size = int(np.prod([mesh.shape[n] for n in names if n is not None]))
            if dim % size:
                raise ValueError(
                    f"{path}: dimension {dim} of shape {tuple(leaf.shape)} does not divide "
                    f"by the {size} devices of mesh axis {entry!r}"
                )
        return spec

    return jax.tree.map(spec_for, params)


def state_shardings(train_state: Any, mesh: Mesh, rules: Rules | None = None) -> Any:
    """Shardings for a whole ``TrainState``: params by ``rules``; each optimizer-state leaf
    that mirrors a parameter (Adam's moments) like that parameter; everything else replicated.
    """
    specs = param_specs(train_state.params, mesh, rules)
    by_path = dict(zip(param_paths(specs), jax.tree.leaves(specs, is_leaf=_is_spec), strict=True))
    shapes = dict(
        zip(param_paths(train_state.params), jax.tree.leaves(train_state.params), strict=True)
    )

    def mirror(path: Any, leaf: Any) -> NamedSharding:
        key = "/".join(
            str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path
        )
        for param_path, spec in by_path.items():  # a moment's path ends with its parameter's
            if (
                key.endswith(param_path)
                and getattr(leaf, "shape", None) == shapes[param_path].shape
            ):
                return NamedSharding(mesh, spec)
        return NamedSharding(mesh, PartitionSpec())

    opt = jax.tree_util.tree_map_with_path(mirror, train_state.opt_state)
    replicated = NamedSharding(mesh, PartitionSpec())
    return type(train_state)(
        params=jax.tree.map(lambda s: NamedSharding(mesh, s), specs, is_leaf=_is_spec),
        state=jax.tree.map(lambda _: replicated, train_state.state),
        opt_state=opt,
        step=replicated,
        key=replicated,
    )


def _is_spec(value: Any) -> bool:
    return isinstance(value, PartitionSpec)


def batch_sharding(mesh: Mesh, *, stacked: bool = False) -> NamedSharding:
    """Split the batch axis along ``data``: ``(B, ...)``, or ``(S, B, ...)`` when ``stacked``."""
    return NamedSharding(mesh, PartitionSpec(None, DATA) if stacked else PartitionSpec(DATA))


def put(value: Any, sharding: NamedSharding) -> Any:
    """One global array from a value that every process holds in full, laid out by ``sharding``.

    Works across processes (each builds only its own shards, ``jax.make_array_from_callback``)
    and for typed PRNG keys (placed as their key data).
    """
    if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(value)
        return jax.random.wrap_key_data(put(jax.random.key_data(value), sharding), impl=impl)
    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def place(tree: Any, shardings: Any) -> Any:
    """:func:`put` every leaf of ``tree`` with the matching sharding of ``shardings``."""
    return jax.tree.map(put, tree, shardings)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put a copy of ``tree`` on every device of the mesh (every process gives the same data)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda value: put(value, sharding), tree)


def global_batch(local_batch: Any, mesh: Mesh) -> Any:
    """Assemble each process's share of a batch into one global array split along ``data``.

    Process ``p`` passes its ``B / num_processes`` examples; the result has the global batch
    ``B``. On one process this is just ``device_put`` with the batch sharding.
    """
    sharding = batch_sharding(mesh)
    return jax.tree.map(
        lambda a: jax.make_array_from_process_local_data(sharding, np.asarray(a)), local_batch
    )


def check_batch_size(batch_size: int, mesh: Mesh) -> None:
    """Raise ``ValueError`` unless the batch splits evenly over the ``data`` axis."""
    devices = mesh.shape[DATA]
    if batch_size % devices:
        raise ValueError(
            f"batch_size={batch_size} does not divide by the {devices} devices of the "
            f"'{DATA}' mesh axis; use a multiple of {devices}"
        )


_ENV = ("JAXNET_COORDINATOR", "JAXNET_NUM_PROCESSES", "JAXNET_PROCESS_ID")


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout_s: int = 300,
    local_device_ids: Sequence[int] | None = None,
) -> None:
    """Join a multi-process run (``jax.distributed.initialize``), one call per process.

    Arguments left None are read from ``JAXNET_COORDINATOR`` (``host:port`` of process 0),
    ``JAXNET_NUM_PROCESSES`` and ``JAXNET_PROCESS_ID``; if those are unset too, JAX detects
    the cluster itself (SLURM, Open MPI, Cloud TPU). On CPU, processes talk through gloo
    collectives over TCP.

    Raises:
      TimeoutError: if the coordinator does not answer within ``timeout_s`` seconds.
      ValueError: for a malformed environment variable.
    """
    env = {name: os.environ.get(name) for name in _ENV}
    coordinator_address = coordinator_address or env["JAXNET_COORDINATOR"]
    try:
        if num_processes is None and env["JAXNET_NUM_PROCESSES"]:
            num_processes = int(env["JAXNET_NUM_PROCESSES"])
        if process_id is None and env["JAXNET_PROCESS_ID"]:
            process_id = int(env["JAXNET_PROCESS_ID"])
    except ValueError as error:
        raise ValueError(
            f"JAXNET_NUM_PROCESSES and JAXNET_PROCESS_ID must be ints: {error}"
        ) from None
    if coordinator_address and process_id:  # process 0 hosts the coordinator itself
        _wait_for_coordinator(coordinator_address, timeout_s, process_id, num_processes)
    jax.distributed.initialize(
        coordinator_address,
        num_processes,
        process_id,
        local_device_ids=local_device_ids,
        initialization_timeout=timeout_s,
    )


def _wait_for_coordinator(address: str, timeout_s: float, process_id: int, count: Any) -> None:
    """Wait until the coordinator accepts TCP connections, or raise ``TimeoutError``.

    JAX aborts the whole process (no Python exception) when its coordinator never answers, so
    the address is checked here first, where a clear error can still be raised.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator address must be 'host:port', got {address!r}")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no coordinator answered at {address} within {timeout_s} s (process "
                    f"{process_id} of {count}); start process 0 first and check the address "
                    "and port"
                ) from None
            time.sleep(0.2)


def is_main_process() -> bool:
    """True on the process that writes logs, plots and checkpoints (process 0)."""
    return jax.process_index() == 0


def sync_processes(name: str) -> None:
    """A barrier across every process of a multi-process run (a no-op with one process):
    returns once all have reached the barrier called ``name``."""
    if jax.process_count() == 1:
        return
    from jax.experimental import multihost_utils

    multihost_utils.sync_global_devices(name)
