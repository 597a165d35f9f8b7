"""Profiling chosen steps of ``fit`` with ``jax.profiler``, into the run folder.

``fit(..., profile=(first, last))`` traces the compiled calls that run train steps ``first`` to
``last`` (counted from 1, as ``train_state.step``): ``jax.profiler.start_trace`` before the
first epoch that holds one of them, ``stop_trace`` after the epoch that holds ``last`` (or when
training stops sooner). An epoch is one compiled call, so the trace holds whole epochs; for a
stream whose pass length is unknown, it starts with the first epoch that begins before
``last``. The trace goes to ``<run_dir>/profile/plugins/profile/<time>/`` (with several
processes, ``<run_dir>/profile/process-<i>/...``, each its own): an ``.xplane.pb``
for TensorBoard's profiler (``tensorboard --logdir <run_dir>/profile``, with the
``tensorboard-plugin-profile`` package) and a ``.trace.json.gz`` that Perfetto
(https://ui.perfetto.dev) opens as it is.
"""

from __future__ import annotations

import pathlib
from typing import Any

import jax

PROFILE = "profile"
"""The run folder's subfolder that holds the traces."""


def check_profile(profile: Any, run_dir: Any) -> tuple[int, int] | None:
    """``profile`` as ``(first, last)`` steps with ``1 <= first <= last``, or None.

    Raises:
      ValueError: for anything else, or a profile without a run folder to write it into.
    """
    if profile is None:
        return None
    ok = isinstance(profile, tuple | list) and len(profile) == 2
    ok = ok and all(isinstance(s, int) and not isinstance(s, bool) for s in profile)
    if not ok or not 1 <= profile[0] <= profile[1]:
        raise ValueError(
            "fit: profile must be (first_step, last_step) with 1 <= first_step <= last_step, "
            f"got {profile!r}"
        )
    if run_dir is None:
        raise ValueError("fit: profile= writes its trace into the run folder; pass run_dir=...")
    return int(profile[0]), int(profile[1])


class Profiler:
    """Starts and stops ``jax.profiler``'s trace around the epochs that hold the chosen steps.

    Use as a context manager around the epochs (a trace still running at the end is stopped),
    and call `before` and `after` each epoch.
    """

    def __init__(self, steps: tuple[int, int] | None, run_dir: Any) -> None:
        self.steps = steps
        self.folder = None if run_dir is None else pathlib.Path(run_dir) / PROFILE
        if self.folder is not None and jax.process_count() > 1:  # each process its own trace
            self.folder = self.folder / f"process-{jax.process_index()}"
        self.running = False
        self.done = steps is None

    def before(self, finished: int, length: int | None) -> None:
        """Before an epoch that follows step ``finished`` and runs ``length`` steps (None:
        unknown): start tracing if the epoch may hold a chosen step."""
        if self.done or self.running or self.steps is None:
            return
        first, last = self.steps
        if finished < last and (length is None or finished + length >= first):
            assert self.folder is not None
            jax.profiler.start_trace(str(self.folder))
            self.running = True

    def after(self, finished: int) -> None:
        """After an epoch that ended at step ``finished``: stop once ``last`` has run."""
        if self.running and self.steps is not None and finished >= self.steps[1]:
            self.stop()

    def stop(self) -> None:
        """Stop the trace (and write it) if one is running; no later epoch is traced."""
        if self.running:
            self.running = False
            jax.profiler.stop_trace()
        self.done = True

    def __enter__(self) -> Profiler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
