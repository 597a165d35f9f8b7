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
from jaxnet.data.stream import Batch, Running, Stream, StreamError, iterator_position
from jaxnet.data.trees import tree_map
from jaxnet.optim.state import TrainState
from jaxnet.train.epoch import TrainStep, guarded
from jaxnet.train.prefetch import Chunk, device_putter, prefetch
from jaxnet.train.retrace import watch_retraces
from jaxnet.validate import checked_fields, positive_int

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
        equal chunks when its length is known (or, with ``log_every`` / ``eval_every``, their
        period split so).
      prefetch: chunks prepared ahead on the device while the current one trains (2: double
        buffering).
      log_every: every this many steps (of ``train_state.step``, counted through the fit),
        report the mean training metrics of the steps since the previous row that had them
        (or the epoch's start), inside the epoch: a step row to the progress bar,
        ``steps.jsonl`` in the run folder and each logger with a ``log_steps`` method
        (TensorBoard's ``steps/`` tags). None: only the epoch rows.
      eval_every: every this many steps, evaluate the validation and test sources inside
        the epoch and report them in a step row likewise; the epoch's end still evaluates,
        and the best checkpoint and early stopping still look at the epoch rows only.

    A chunk never runs past a step where a row is due: the rows are exactly at multiples of
    ``log_every`` / ``eval_every``, each after its chunk's one host sync.

    Example:
      >>> Streaming(log_every=100)
      Streaming(steps_per_call=None, prefetch=2, log_every=100, eval_every=None)
    """

    steps_per_call: int | None = None
    prefetch: int = 2
    log_every: int | None = None
    eval_every: int | None = None

    def __post_init__(self) -> None:
        for name in ("steps_per_call", "prefetch", "log_every", "eval_every"):
            value = getattr(self, name)
            if value is not None or name == "prefetch":
                checked_fields(self, **{name: positive_int(value, name, owner="Streaming")})

    @property
    def periods(self) -> tuple[int, ...]:
        """The step periods of the rows due inside an epoch (none without them)."""
        return tuple(int(n) for n in (self.log_every, self.eval_every) if n is not None)


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
    chunks are alive at once: prefetched, training, kept to replay a failure), and for a
    period ``L`` ``L`` split into equal chunks of at most that (89 steps: 45 + 44), so chunks
    end where a pass ends or a row is due. ``L`` is the greatest common divisor of
    ``log_every`` and ``eval_every`` when they are given and not longer than a pass, else the
    pass's length when known (rows then cut the chunks they fall in)."""
    if settings.steps_per_call is not None:
        return int(settings.steps_per_call)
    spec = stream.spec
    batch_bytes = spec.x_bytes + math.prod(spec.y_shape) * spec.y_dtype.itemsize
    most = max(1, min(DEFAULT_STEPS_PER_CALL, CHUNK_BYTES // batch_bytes))
    length = pass_length(stream)
    if settings.periods and (length is None or math.gcd(*settings.periods) <= length):
        length = math.gcd(*settings.periods)  # rows due inside the pass: chunks end there
    if not length:
        return most
    return math.ceil(length / math.ceil(length / most))


def chunk_limit(start: int, periods: tuple[int, ...], size: int) -> Callable[[int], int]:
    """``limit(first)``: the most batches of a chunk whose first batch is the pass's batch
    ``first``, in a pass starting after step ``start``: ``size``, or fewer to end at the next
    multiple of a period (where a row is due)."""

    def limit(first: int) -> int:
        done = start + first
        return min([size, *(period - done % period for period in periods)])

    return limit


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

            active = jnp.arange(ys.shape[0]) < count  # xs may be a tuple or dict of arrays
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
        weight = (jnp.arange(ys.shape[0]) < count) * ys.shape[1]  # (K,) examples, 0 if padding
        sums = {k: (v * weight).sum() for k, v in per_batch.items()}
        sums["examples"] = weight.sum().astype(jnp.float32)
        return sums if totals is None else jax.tree.map(jnp.add, totals, sums)

    return run


@dataclasses.dataclass
class _InFlight:
    """A chunk dispatched to the device, until `StreamEngine._finish` brings its results back.

    ``end`` is the train step after it; ``evaluation`` the device totals of an evaluation
    dispatched right after it (a row is due there), ``evaluated`` their averages on the host.
    """

    chunk: Chunk
    halted: Any
    metrics: Any
    applied: Any
    end: int
    evaluation: Any = None
    evaluated: dict[str, dict[str, float]] | None = None


class StreamEngine:
    """Runs epochs of a :class:`Stream` for ``fit``; see the module docstring.

    ``run_epoch(train_state, epoch)`` returns what the in-memory epoch does: the state, each
    step's metrics ``(S,)``, which steps were applied ``(S,)``, and the held-out evaluations
    ``{"val": {...}, "test": {...}}``, all on the host. ``batch_at(index)`` is the epoch's
    batch ``index`` once a step failed (from the chunks kept for that).

    With ``settings.log_every`` / ``eval_every``, chunks end where a row is due and
    ``on_row(row)`` receives each step row ``{"epoch", "step", "train_*"?, "val_*"?,
    "test_*"?}`` after its chunk's sync (one chunk behind the device, as the rest). An
    evaluation due inside the pass is dispatched between its chunk and the next; one due at
    the pass's end is the epoch's own evaluation.
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
        on_row: Callable[[dict[str, Any]], Any] | None = None,
        start_position: dict[str, Any] | None = None,
    ) -> None:
        self.stream, self.settings = stream, settings
        self.on_steps, self.on_row = on_steps, on_row
        self.size = steps_per_call(stream, settings)
        self.to_device = device_putter(sharding)
        name = "fit's streamed chunk"
        self._full = jax.jit(
            watch_retraces(make_chunk(train_step, padded=False), name=name), donate_argnums=0
        )
        self._padded = jax.jit(make_chunk(train_step, padded=True), donate_argnums=0)
        # a pass of known length ends in a chunk of one known size: compiled once, not padded;
        # chunks cut short where a row is due may have any size: padded
        self._rest = jax.jit(make_chunk(train_step, padded=False), donate_argnums=0)
        self._pad = pass_length(stream) is None or bool(settings.periods)
        self._eval = jax.jit(make_eval_chunk(eval_step))
        self._kept: list[tuple[int, int, Any]] = []  # (first, real, host batches)
        self._logged = 0  # chunks of the epoch whose steps a row has reported
        self._running: Running | None = None
        if stream.steps_per_epoch is not None:  # one iterator for the fit, resumed exactly
            skip = start_epoch * stream.steps_per_epoch
            at = start_position or {}
            iterator = at.get("iterator") if at.get("batches") == skip else None
            saved_in = f"checkpoints/{start_epoch}/extra-{jax.process_index()}.json"
            self._running = stream.running(skip=skip, position=iterator, saved_in=saved_in)

    def _train_batches(self, epoch: int) -> Iterator[Batch]:
        if self._running is None:
            return self.stream.batches("train", epoch)
        assert self.stream.steps_per_epoch is not None
        return itertools.islice(self._running.batches, self.stream.steps_per_epoch)

    def position(self, epochs: int) -> dict[str, Any] | None:
        """After ``epochs`` epochs, where the running ``steps_per_epoch`` iterator stands, to
        save with the checkpoint: ``{"batches": N, "iterator": ...}`` when it can tell (a
        Grain iterator's state), else None (a resume reads the ``N`` batches again)."""
        if self._running is None or self.stream.steps_per_epoch is None:
            return None
        iterator = iterator_position(self._running.source)
        if iterator is None:
            return None
        return {"batches": epochs * self.stream.steps_per_epoch, "iterator": iterator}

    def _program(self, chunk: Chunk) -> Callable[..., Any]:
        """The compiled call for ``chunk``: padded, of the usual size ``K``, or the rest."""
        if len(chunk.host[1]) > chunk.real:  # host[0], x, may be a tuple or dict of parts
            return self._padded
        return self._full if chunk.real == self.size else self._rest

    def run_epoch(self, train_state: TrainState, epoch: int) -> Any:
        """One epoch: every chunk of the pass, then the validation and test sources."""
        periods = self.settings.periods
        start = int(jax.device_get(train_state.step)) if periods else 0
        limit = chunk_limit(start, periods, self.size) if periods else None
        chunks = prefetch(
            self._train_batches(epoch),
            self.size,
            self.to_device,
            depth=self.settings.prefetch,
            pad=self._pad,
            limit=limit,
        )
        halted = jnp.zeros((), bool)
        pending: list[_InFlight] = []
        done: list[tuple[Any, Any]] = []
        self._kept, self._logged = [], 0
        try:
            for chunk in chunks:
                if pending and _due(pending[-1].end, self.settings.eval_every):
                    # the previous chunk ended where an evaluation is due, and the pass goes on
                    pending[-1].evaluation = self._dispatch_evaluation(train_state, epoch)
                train_state, halted, metrics, applied = self._program(chunk)(
                    train_state, halted, chunk.x, chunk.y, np.int32(chunk.real)
                )
                end = start + chunk.first + chunk.real
                pending.append(_InFlight(chunk, halted, metrics, applied, end))
                if len(pending) > 1 and self._finish_and_report(pending.pop(0), done, epoch):
                    break  # a step went non-finite: stop reading the source
        finally:
            chunks.close()
        last = pending.pop() if pending else None  # the loop leaves at most one in flight
        halted_at_last = last is not None and self._finish(last, done)
        if not done:
            where = "" if self._running is None else " (its steps_per_epoch iterator ran dry)"
            raise StreamError(
                f"stream: the train source yielded no batches in epoch {epoch}{where}"
            )
        evaluated = self.evaluate(train_state, epoch)
        if last is not None and not halted_at_last:  # a row due at the pass's end
            last.evaluated = evaluated if _due(last.end, self.settings.eval_every) else None
            self._report(last, done, epoch)
        metrics = {k: np.concatenate([m[k] for m, _ in done]) for k in done[0][0]}
        finite = np.concatenate([a for _, a in done])
        return train_state, metrics, finite, evaluated

    def _finish(self, item: _InFlight, done: list[tuple[Any, Any]]) -> bool:
        """Bring a dispatched chunk's results to the host (its one sync); True if halted."""
        fetched = jax.device_get((item.metrics, item.applied, item.halted, item.evaluation))
        metrics, applied, halted, evaluation = fetched
        count = item.chunk.real
        done.append(({k: v[:count] for k, v in metrics.items()}, applied[:count]))
        self._kept = [*self._kept[-1:], (item.chunk.first, item.chunk.real, item.chunk.host)]
        if evaluation is not None:
            item.evaluated = _averages(evaluation)
        if self.on_steps is not None:
            self.on_steps(count)
        return bool(halted)

    def _finish_and_report(self, item: _InFlight, done: list[tuple[Any, Any]], epoch: int) -> bool:
        """`_finish`, then the row due after the chunk (none once a step failed)."""
        halted = self._finish(item, done)
        if not halted:
            self._report(item, done, epoch)
        return halted

    def _report(self, item: _InFlight, done: list[tuple[Any, Any]], epoch: int) -> None:
        """Hand ``on_row`` the step row due after ``item``, if one is: the mean training
        metrics since the last row that had them (or the epoch's start), the evaluation."""
        row: dict[str, Any] = {"epoch": epoch + 1, "step": item.end}
        if _due(item.end, self.settings.log_every):
            window = done[self._logged :]
            row |= {
                f"train_{k}": float(np.mean(np.concatenate([m[k] for m, _ in window])))
                for k in done[0][0]
            }
            self._logged = len(done)
        for split in ("val", "test"):
            row |= {f"{split}_{k}": v for k, v in (item.evaluated or {}).get(split, {}).items()}
        if len(row) > 2 and self.on_row is not None:
            self.on_row(row)

    def batch_at(self, index: int) -> tuple[Any, Array]:
        """The epoch's batch ``index``, from the chunks kept (the last two)."""
        for first, real, host in self._kept:
            if first <= index < first + real:
                return _row(host, index - first)
        raise AssertionError(f"batch {index} is not among the kept chunks")  # internal

    def _dispatch_evaluation(self, train_state: TrainState, epoch: int) -> dict[str, Any]:
        """Start evaluating the validation and test sources: per split the device totals of
        :func:`make_eval_chunk`, not yet brought to the host."""
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
        return totals

    def evaluate(self, train_state: TrainState, epoch: int) -> dict[str, dict[str, float]]:
        """Metrics over the validation and test sources, weighted by examples; one host sync."""
        return _averages(jax.device_get(self._dispatch_evaluation(train_state, epoch)))


def _due(step: int, period: int | None) -> bool:
    """Whether a row of ``period`` (``log_every`` or ``eval_every``) is due after ``step``."""
    return period is not None and step % period == 0


def _averages(totals: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per split, each metric's sum over the examples divided by their number."""
    return {
        split: {k: float(v / sums["examples"]) for k, v in sums.items() if k != "examples"}
        for split, sums in totals.items()
    }


def _row(host: tuple[Any, np.ndarray], row: int) -> tuple[Any, Array]:
    """Batch ``row`` of a chunk's stacked host arrays, on the device."""
    return tree_map(lambda a: jnp.asarray(a[row]), host[0]), jnp.asarray(host[1][row])
