"""Prefetch to the device: a host thread stacks the next batches while the device trains.

:func:`prefetch` reads ``(x, y)`` NumPy batches from an iterator in a background thread,
stacks ``K`` of them into ``(K, B, ...)`` arrays (a :class:`Chunk`, one compiled call's work;
every part of an ``x`` that is a tuple or dict of arrays alike),
starts their transfer to the device(s), and hands them over through a queue that holds
``depth`` chunks: while the device runs chunk ``i`` the host already holds ``i + 1`` (and,
with ``depth=2``, ``i + 2``) on the device. An error in the thread (a source that raises, a
malformed batch) reaches the consumer at the chunk where it happened, as the same exception.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any, NamedTuple

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxnet.data.stream import Batch, StreamError
from jaxnet.data.trees import tree_map


class Chunk(NamedTuple):
    """``K`` batches stacked for one compiled call.

    Attributes:
      x, y: the stacked batches on the device(s), shapes ``(K, B, ...)`` (``x`` a tuple or
        dict of such arrays for tree features).
      real: how many of the ``K`` are real batches; the rest repeat the last one (padding of a
        last partial chunk, which the compiled call skips).
      host: the same batches as NumPy arrays, to replay a failed step on the host.
      first: the index (in the pass) of the chunk's first batch.
    """

    x: Any
    y: Any
    real: int
    host: tuple[Any, np.ndarray]
    first: int


class _Failure(NamedTuple):
    error: BaseException


_DONE = object()


def _group(
    batches: Iterator[Batch], size: int, limit: Callable[[int], int] | None = None
) -> Iterator[list[Batch]]:
    """Lists of up to ``size`` batches of one shape (and, with ``limit``, of at most
    ``limit(first)`` for a group whose first batch is the pass's batch ``first``): a batch
    whose shapes differ from its group's (a smaller last evaluation batch) starts a group of
    its own."""
    cap = (lambda first: size) if limit is None else limit
    group: list[Batch] = []
    first = 0  # the pass's index of the group's first batch
    for batch in batches:
        if group and _shapes(batch) != _shapes(group[0]):
            yield group
            first, group = first + len(group), []
        group.append(batch)
        if len(group) >= cap(first):
            yield group
            first, group = first + len(group), []
    if group:
        yield group


def _shapes(batch: Batch) -> Any:
    """The shape of a batch's ``x`` (a tuple or dict of shapes for tree features)."""
    return tree_map(np.shape, batch[0])


def stack(group: list[Batch], size: int) -> tuple[Any, np.ndarray]:
    """``group`` as ``(size, B, ...)`` arrays (every part of a tree ``x``), padded by repeating
    its last batch."""
    padded = group + [group[-1]] * (size - len(group))
    xs = tree_map(lambda *parts: np.stack(parts), *[b[0] for b in padded])
    return xs, np.stack([b[1] for b in padded])


def prefetch(
    batches: Iterator[Batch],
    size: int,
    to_device: Callable[[np.ndarray], Any],
    *,
    depth: int = 2,
    pad: bool = True,
    limit: Callable[[int], int] | None = None,
) -> Generator[Chunk, None, None]:
    """Chunks of ``size`` batches from ``batches``, prepared ``depth`` chunks ahead in a
    background thread and put on the device with ``to_device``.

    A group smaller than ``size`` (the end of a pass) is padded to ``size`` and marked with
    its number of ``real`` batches, so a compiled call of one shape serves every chunk.
    Batches of another shape than the first (a smaller last evaluation batch) form a chunk
    of their own, not padded (one more compile for that shape, which is the same every epoch).
    Without ``pad`` (evaluation, whose passes are the same every epoch) no chunk is padded:
    padding would evaluate the repeated batch for nothing. ``limit(first)`` caps the chunk
    that starts at the pass's batch ``first`` (one that must end where a row is due); a
    chunk it cuts short is padded like a last one.

    Stop early by closing the returned generator (``generator.close()``, or leaving a ``for``
    loop over it that is then garbage collected): the thread stops after its current chunk.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        first, standard = 0, None
        try:
            for group in _group(batches, size, limit):
                standard = standard or _shapes(group[0])
                # the usual shape pads to `size`; another (evaluation only) keeps its length
                k = size if pad and _shapes(group[0]) == standard else len(group)
                host = stack(group, k)
                x = tree_map(to_device, host[0])
                chunk = Chunk(x, to_device(host[1]), len(group), host, first)
                first += len(group)
                if not put(chunk):
                    return
        except BaseException as error:  # handed to the consumer, raised there
            put(_Failure(error))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="jaxnet-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        thread.join()


def device_putter(sharding: Any) -> Callable[[np.ndarray], Any]:
    """How a stacked host array ``(K, B, ...)`` reaches the device(s): as it is (one device),
    split along the batch axis by ``sharding``, or, with several processes, as this process's
    part of a global array (:func:`jax.make_array_from_process_local_data`: each process
    holds its own examples). In one process a batch that does not split evenly (a smaller
    last evaluation batch) is copied to every device instead.

    Raises:
      StreamError: with several processes, for a batch whose global size does not divide
        among the devices of the mesh's ``data`` axis.
    """
    if sharding is None:
        return jax.device_put
    ways = int(sharding.mesh.shape["data"])
    if jax.process_count() == 1:
        whole = NamedSharding(sharding.mesh, PartitionSpec())

        def put(host: np.ndarray) -> Any:
            return jax.device_put(host, sharding if host.shape[1] % ways == 0 else whole)

        return put

    def put_part(host: np.ndarray) -> Any:
        size = host.shape[1] * jax.process_count()
        if size % ways:
            raise StreamError(
                f"stream: a batch of {host.shape[1]} examples in each of "
                f"{jax.process_count()} processes ({size} in all) does not divide among the "
                f"{ways} devices of the mesh's data axis"
            )
        return jax.make_array_from_process_local_data(sharding, host)

    return put_part
