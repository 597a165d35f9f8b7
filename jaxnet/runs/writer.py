"""One worker thread for a run folder's slow writes, so that training does not wait on the disk.

``fit`` hands its checkpoints (host copies of the state), log-file flushes and plot redraws to a
`BackgroundWriter`. Jobs run one at a time, in the order they were submitted. A job whose key
is already waiting (not yet started) is replaced in its place by the newer one: redrawing the
plot or flushing the logs twice in a row would only write the older content first. The caller
decides what must not be replaced (checkpoints: ``fit`` skips or waits, see `busy`).

A job's error is raised in the caller's thread at the next `submit`, `wait` or `close`; the jobs
behind it are dropped. Leaving a ``with`` block by KeyboardInterrupt drops the jobs that have
not started. The worker is not a daemon, so a job that has started completes (or rolls itself
back) before the interpreter exits, even after a second Ctrl-C.

Example:
    >>> done = []
    >>> with BackgroundWriter() as writer:
    ...     writer.submit("log", lambda: done.append("first"))
    ...     writer.wait()
    ...     writer.submit("log", lambda: done.append("second"))
    >>> done
    ['first', 'second']
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

Job = Callable[[], object]

_POLL_SECONDS = 0.5  # how often an idle worker checks that the main thread is still alive


class BackgroundWriter:
    """Runs jobs in one worker thread, in order; or at once in the caller's thread when
    ``asynchronous`` is False (several processes, whose checkpoints must stay in step).

    Args:
        asynchronous: run jobs in a worker thread (True) or in ``submit`` itself (False).
    """

    def __init__(self, *, asynchronous: bool = True) -> None:
        self.asynchronous = asynchronous
        self._queue: list[tuple[str, Job]] = []
        self._running: str | None = None
        self._error: BaseException | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if error is None:
            self.close()
            return
        if isinstance(error, KeyboardInterrupt):  # a second Ctrl-C: only what started finishes
            with self._changed:
                self._queue.clear()
        with contextlib.suppress(Exception):  # an error is on its way: it says more
            self.close()

    def submit(self, key: str, job: Job, *, replace: bool = True) -> None:
        """Run ``job`` after the jobs before it. With ``replace``, a waiting job of the same
        ``key`` is replaced in its place; without, this waits until no job of ``key`` is
        waiting (at most one waits per key, which bounds the memory of host copies).

        Raises:
            The error of an earlier job, if one failed; RuntimeError after `close`.
        """
        if not self.asynchronous:
            self._raise_error()
            job()
            return
        with self._changed:
            self._check_open()
            if not replace:
                self._changed.wait_for(lambda: self._error is not None or not self._waiting(key))
            self._raise_error()
            for index, (waiting, _) in enumerate(self._queue):
                if replace and waiting == key:
                    self._queue[index] = (key, job)
                    break
            else:
                self._queue.append((key, job))
            self._start()
            self._changed.notify_all()

    def busy(self, key: str) -> bool:
        """Whether a job of ``key`` is waiting or running."""
        with self._changed:
            return self._running == key or self._waiting(key)

    def running(self) -> bool:
        """Whether a job is running now (one that started and has not finished)."""
        with self._changed:
            return self._running is not None

    def wait(self) -> None:
        """Block until every submitted job has run; raise the first error of one."""
        with self._changed:
            self._changed.wait_for(lambda: self._error is not None or self._idle())
            self._raise_error()

    def close(self) -> None:
        """`wait`, then stop the worker; idempotent. Raises the first error of a job."""
        try:
            self.wait()
        finally:
            with self._changed:
                self._closed = True
                self._changed.notify_all()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join()

    # ------------------------------------------------------------------------- internals

    def _waiting(self, key: str) -> bool:
        return any(waiting == key for waiting, _ in self._queue)

    def _idle(self) -> bool:
        return not self._queue and self._running is None

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("BackgroundWriter: submit after close")

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._queue.clear()
            raise error

    def _start(self) -> None:
        """Start the worker, again if it stopped (it stops when idle after the main thread
        has ended, so that a writer nobody closed never keeps the interpreter alive)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="jaxnet-writer")
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._queue:
                    if self._closed or not threading.main_thread().is_alive():
                        return
                    self._changed.wait(_POLL_SECONDS)
                self._running, job = self._queue.pop(0)
            try:
                job()
            except BaseException as error:
                with self._changed:
                    self._error = self._error or error
                    self._queue.clear()
            finally:
                with self._changed:
                    self._running = None
                    self._changed.notify_all()
