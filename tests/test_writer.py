"""jaxnet.runs.writer: one worker thread, jobs in order, waiting jobs replaced in place."""

import threading

import pytest

from jaxnet.runs.writer import BackgroundWriter


class Gate:
    """A job that blocks the worker until the test opens it."""

    def __init__(self, done: list[str]) -> None:
        self.started, self.opened, self.done = threading.Event(), threading.Event(), done

    def __call__(self) -> None:
        self.started.set()
        assert self.opened.wait(10)
        self.done.append("gate")


def test_jobs_run_in_order_and_a_waiting_job_is_replaced_in_its_place():
    done: list[str] = []
    gate = Gate(done)
    with BackgroundWriter() as writer:
        writer.submit("gate", gate)
        assert gate.started.wait(10)
        writer.submit("logs", lambda: done.append("logs 1"))
        writer.submit("checkpoint", lambda: done.append("checkpoint"))
        writer.submit("logs", lambda: done.append("logs 2"))  # replaces "logs 1", before it
        assert writer.busy("logs") and writer.busy("checkpoint") and writer.running()
        gate.opened.set()
    assert done == ["gate", "logs 2", "checkpoint"]


def test_without_replace_a_submit_waits_for_the_waiting_job_of_its_key_to_start():
    done: list[str] = []
    gate = Gate(done)
    writer = BackgroundWriter()
    writer.submit("checkpoint", gate)
    assert gate.started.wait(10)
    writer.submit("checkpoint", lambda: done.append("first"), replace=False)  # runs, waits
    blocked = threading.Thread(
        target=lambda: writer.submit("checkpoint", lambda: done.append("second"), replace=False)
    )
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive()  # "first" is still waiting behind the gate
    gate.opened.set()
    blocked.join(10)
    writer.close()
    assert done == ["gate", "first", "second"]


def test_an_error_is_raised_in_the_caller_and_drops_the_jobs_behind_it():
    done: list[str] = []
    writer = BackgroundWriter()

    def full_disk() -> None:
        raise OSError(28, "No space left on device", "run/checkpoints/3")

    gate = Gate(done)
    writer.submit("gate", gate)
    writer.submit("checkpoint", full_disk)
    writer.submit("plot", lambda: done.append("plot"))
    gate.opened.set()
    with pytest.raises(OSError, match="No space left on device") as caught:
        writer.wait()
    assert caught.value.filename == "run/checkpoints/3"
    assert done == ["gate"]
    writer.close()  # the error was raised once
    with pytest.raises(RuntimeError, match="BackgroundWriter: submit after close"):
        writer.submit("plot", lambda: None)


def test_leaving_by_keyboard_interrupt_finishes_only_the_job_that_started():
    done: list[str] = []
    gate = Gate(done)
    with pytest.raises(KeyboardInterrupt), BackgroundWriter() as writer:
        writer.submit("checkpoint", gate)
        writer.submit("plot", lambda: done.append("plot"))
        assert gate.started.wait(10)
        threading.Timer(0.2, gate.opened.set).start()
        raise KeyboardInterrupt
    assert done == ["gate"]


def test_synchronous_jobs_run_in_the_callers_thread():
    threads: list[str] = []
    writer = BackgroundWriter(asynchronous=False)
    writer.submit("logs", lambda: threads.append(threading.current_thread().name))
    assert threads == [threading.current_thread().name] and not writer.busy("logs")
    writer.close()
