"""``fit``'s streaming path: chunks of ``K`` batches, each one compiled, guarded ``lax.scan``.

The in-memory path runs an epoch as one call over data already on the device. A
:class:`jaxnet.data.Stream` does not fit there, so its batches arrive from the host:
:func:`jaxnet.train.prefetch.prefetch` stacks ``K = steps_per_call`` of them in a background
thread and puts them on the device while the previous chunk trains, and one compiled call runs
the chunk's steps with the same guarded step as the in-memory epoch (so both paths train the
same parameters on the same batches). A pass of known length (``len(source)`` or
``steps_per_epoch``) ends in a chunk of one known size, compiled once more; in a pass of
unknown length the last chunk of fewer than ``K`` batches is padded and its missing steps are
skipped inside the call (a ``lax.cond``), so one shape serves every chunk and nothing
recompiles whatever the pass's length. The host syncs once per chunk, one chunk behind the
device, to see whether a step went non-finite; the batches of the last two chunks are kept to
replay a failed step. Validation and test sources are evaluated the same way, in chunks.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxnet.core import Array
from jaxnet.data.stream import Batch, Stream, StreamError
from jaxnet.train.epoch import TrainStep, guarded
from jaxnet.train.prefetch import Chunk, device_putter, prefetch
from jaxnet.train.retrace import watch_retraces
from jaxnet.train.state import TrainState

DEFAULT_STEPS_PER_CALL = 64
"""The most steps per compiled call by default: enough that the call's fixed cost (tens of
microseconds to launch, one host sync) is a few percent of a small step's."""


CHUNK_BYTES = 16 << 20
"""The most bytes of batches a default chunk holds (16 MB: 4 batches of 1,024 rows × 1,024
float32 features), so the chunks alive at once (prefetched, training, kept) stay ~100 MB."""


@dataclasses.dataclass(frozen=True)
class Streaming:
    """How ``fit`` consumes a :class:`jaxnet.data.Stream`.

    Args:
      steps_per_call: batches stacked and run in one compiled call (Keras's
        ``steps_per_execution``); None: at most 64 batches and 16 MB, the pass split into
        equal chunks when its length is known.
      prefetch: chunks prepared ahead on the device while the current one trains (2: double
        buffering).
    """

    steps_per_call: int | None = None
    prefetch: int = 2

    def __post_init__(self) -> None:
        for name in ("steps_per_call", "prefetch"):
            value = getattr(self, name)
            if value is None and name == "steps_per_call":
                continue
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"Streaming: {name} must be a positive int, got {value!r}")


def pass_length(stream: Stream) -> int | None:
    """Batches per epoch, when known: ``steps_per_epoch``, or ``len()`` of the source."""
    if stream.steps_per_epoch is not None:
        return stream.steps_per_epoch
    try:
        return len(stream.train)  # type: ignore[arg-type]
    except TypeError:  # no len(): a generator, an IterDataset, a function of the epoch
        return None


def steps_per_call(stream: Stream, settings: Streaming) -> int:
    """``K`` for a stream: as set; else at most 64 batches and at most 16 MB of them (a few
    chunks are alive at once: prefetched, training, kept to replay a failure), and for a pass
    of known length ``L``, ``L`` split into equal chunks of at most that (89 steps: 45 + 44)."""
    if settings.steps_per_call is not None:
        return int(settings.steps_per_call)
    spec = stream.spec
    batch_bytes = math.prod(spec.x_shape) * spec.x_dtype.itemsize
    batch_bytes += math.prod(spec.y_shape) * spec.y_dtype.itemsize
    most = max(1, min(DEFAULT_STEPS_PER_CALL, CHUNK_BYTES // batch_bytes))
    length = pass_length(stream)
    if not length:
        return most
    return math.ceil(length / math.ceil(length / most))


def make_chunk(train_step: TrainStep, *, padded: bool) -> Callable[..., Any]:
    """``run(train_state, halted, xs, ys, count) -> (train_state, halted, metrics, applied)``:
    the guarded steps of one chunk ``(K, B, ...)``. With ``padded`` only the first ``count``
    steps run (a ``lax.cond`` skips the rest); else all ``K`` do, as in the in-memory epoch."""
    body = guarded(train_step)

    def run(train_state: TrainState, halted: Array, xs: Any, ys: Any, count: Array) -> Any:
        carry = (train_state, halted)
        if padded:
            one = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), (xs, ys))
            shapes = jax.eval_shape(body, carry, one)[1]
            skipped = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

            def step(carry: Any, inputs: Any) -> Any:
                batch, on = inputs[:2], inputs[2]
                return jax.lax.cond(on, lambda c: body(c, batch), lambda c: (c, skipped), carry)

            active = jnp.arange(xs.shape[0]) < count
            carry, (metrics, applied) = jax.lax.scan(step, carry, (xs, ys, active))
        else:
            carry, (metrics, applied) = jax.lax.scan(body, carry, (xs, ys))
        train_state, halted = carry
        return train_state, halted, metrics, applied

    return run


def make_eval_chunk(eval_step: Callable[..., dict[str, Array]]) -> Callable[..., Any]:
    """``run(train_state, totals, xs, ys, count) -> totals``: add the chunk's metrics, each
    weighted by its batch's examples, to running ``totals`` (``"examples"`` counts them)."""

    def run(train_state: TrainState, totals: dict[str, Array], xs: Any, ys: Any, count: Any):
        per_batch = jax.lax.map(lambda batch: eval_step(train_state, batch), (xs, ys))  # (K,)
        weight = (jnp.arange(xs.shape[0]) < count) * xs.shape[1]  # (K,) examples, 0 if padding
        sums = {k: (v * weight).sum() for k, v in per_batch.items()}
        sums["examples"] = weight.sum().astype(jnp.float32)
        return sums if totals is None else jax.tree.map(jnp.add, totals, sums)

    return run


class StreamEngine:
    """Runs epochs of a :class:`Stream` for ``fit``; see the module docstring.

    ``run_epoch(train_state, epoch)`` returns what the in-memory epoch does: the state, each
    step's metrics ``(S,)``, which steps were applied ``(S,)``, and the held-out evaluations
    ``{"val": {...}, "test": {...}}``, all on the host. ``batch_at(index)`` is the epoch's
    batch ``index`` once a step failed (from the chunks kept for that).
    """

    def __init__(
        self,
        stream: Stream,
        train_step: TrainStep,
        eval_step: Callable[..., dict[str, Array]],
        settings: Streaming,
        *,
        sharding: Any = None,
        start_epoch: int = 0,
        on_steps: Callable[[int], Any] | None = None,
    ) -> None:
        self.stream, self.settings, self.on_steps = stream, settings, on_steps
        self.size = steps_per_call(stream, settings)
        self.to_device = device_putter(sharding)
        name = "fit's streamed chunk"
        self._full = jax.jit(
            watch_retraces(make_chunk(train_step, padded=False), name=name), donate_argnums=0
        )
        self._padded = jax.jit(make_chunk(train_step, padded=True), donate_argnums=0)
        # a pass of known length ends in a chunk of one known size: compiled once, not padded
        self._rest = jax.jit(make_chunk(train_step, padded=False), donate_argnums=0)
        self._pad = pass_length(stream) is None
        self._eval = jax.jit(make_eval_chunk(eval_step))
        self._kept: list[tuple[int, int, Any]] = []  # (first, real, host batches)
        self._running: Iterator[Batch] | None = None
        if stream.steps_per_epoch is not None:  # one iterator for the fit, resumed exactly
            self._running = stream.running(skip=start_epoch * stream.steps_per_epoch)

    def _train_batches(self, epoch: int) -> Iterator[Batch]:
        if self._running is None:
            return self.stream.batches("train", epoch)
        assert self.stream.steps_per_epoch is not None
        return itertools.islice(self._running, self.stream.steps_per_epoch)

    def run_epoch(self, train_state: TrainState, epoch: int) -> Any:
        """One epoch: every chunk of the pass, then the validation and test sources."""
        batches = self._train_batches(epoch)
        depth = self.settings.prefetch
        chunks = prefetch(batches, self.size, self.to_device, depth=depth, pad=self._pad)
        halted = jnp.zeros((), bool)
        pending: list[tuple[Chunk, Any, Any, Any]] = []
        done: list[tuple[Any, Any]] = []
        self._kept = []
        try:
            for chunk in chunks:
                run = self._full if chunk.real == self.size else self._rest
                run = self._padded if len(chunk.host[0]) > chunk.real else run
                train_state, halted, metrics, applied = run(
                    train_state, halted, chunk.x, chunk.y, np.int32(chunk.real)
                )
                pending.append((chunk, halted, metrics, applied))
                if len(pending) > 1 and self._finish(pending.pop(0), done):
                    break  # a step went non-finite: stop reading the source
        finally:
            chunks.close()
        while pending:
            self._finish(pending.pop(0), done)
        if not done:
            where = "" if self._running is None else " (its steps_per_epoch iterator ran dry)"
            raise StreamError(
                f"stream: the train source yielded no batches in epoch {epoch}{where}"
            )
        metrics = {k: np.concatenate([m[k] for m, _ in done]) for k in done[0][0]}
        finite = np.concatenate([a for _, a in done])
        return train_state, metrics, finite, self.evaluate(train_state, epoch)

    def _finish(self, item: tuple[Chunk, Any, Any, Any], done: list[tuple[Any, Any]]) -> bool:
        """Bring a dispatched chunk's results to the host (its one sync); True if halted."""
        chunk, halted, metrics, applied = item
        metrics, applied, halted = jax.device_get((metrics, applied, halted))
        count = chunk.real
        done.append(({k: v[:count] for k, v in metrics.items()}, applied[:count]))
        self._kept = [*self._kept[-1:], (chunk.first, chunk.real, chunk.host)]
        if self.on_steps is not None:
            self.on_steps(count)
        return bool(halted)

    def batch_at(self, index: int) -> tuple[Array, Array]:
        """The epoch's batch ``index``, from the chunks kept (the last two)."""
        for first, real, host in self._kept:
            if first <= index < first + real:
                return jnp.asarray(host[0][index - first]), jnp.asarray(host[1][index - first])
        raise AssertionError(f"batch {index} is not among the kept chunks")  # internal

    def evaluate(self, train_state: TrainState, epoch: int) -> dict[str, dict[str, float]]:
        """Metrics over the validation and test sources, weighted by examples; one host sync."""
        totals: dict[str, Any] = {}
        for split in ("val", "test"):
            if getattr(self.stream, split) is None:
                continue
            batches = self.stream.batches(split, epoch)
            running = None
            chunks = prefetch(
                batches, self.size, self.to_device, depth=self.settings.prefetch, pad=False
            )
            for chunk in chunks:
                running = self._eval(train_state, running, chunk.x, chunk.y, np.int32(chunk.real))
            if running is None:
                raise StreamError(f"stream: the {split} source yielded no batches in epoch {epoch}")
            totals[split] = running
        totals = jax.device_get(totals)
        return {
            split: {k: float(v / sums["examples"]) for k, v in sums.items() if k != "examples"}
            for split, sums in totals.items()
        }
