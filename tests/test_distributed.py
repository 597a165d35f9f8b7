"""Data parallelism, parameter sharding and two processes, against single-device training.

Several CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX
starts, so these tests run their training in subprocesses. The two-process tests share one
two-process job and one single-process reference (the ``runs`` fixture): each process trains
every scenario in turn, so JAX starts, joins the job and compiles once per process, not per test.
"""

import dataclasses
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from jax.sharding import PartitionSpec

import jaxnet as jn

HERE = Path(__file__).parent / "multihost"


def _python(*args, timeout=300):
    done = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_sharded_training_equals_single_device(default_optimizations):  # XLA's defaults
    report = json.loads(_python(HERE / "sharded.py").stdout.strip().splitlines()[-1])
    assert report["devices"] == 8
    assert report["data_parallel"] < 1e-5  # XLA reduces the gradient over devices: float tolerance
    assert report["model_parallel"] < 1e-5
    assert report["stepwise_data_parallel"] < 1e-5  # one jitted step per call, batch split 8 ways
    assert report["stepwise_w0_sharding"] == "P()"  # replicated
    assert report["w0_spec"] == "P(None, 'model')"
    assert report["mu_spec"] == "P(None, 'model')"  # Adam's moment follows its parameter
    assert (
        report["indivisible_batch"]
        == "batch_size=12 does not divide by the 8 devices of the 'data' mesh axis; use a multiple of 8"
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scenarios(folder):
    """Each scenario's worker options: in the two-process job (its run folders in ``folder``),
    and in the single-process reference on 4 devices, which keeps no run folder."""
    return {
        "plateau": (["--run-dir", folder / "plateau", "--plateau"], ["--plateau"]),
        "stream": (["--stream"], ["--stream"]),
        "model": (["--model", "4", "--run-dir", folder / "model"], ["--model", "4"]),
    }


@dataclasses.dataclass
class Runs:
    """What the tests read: each scenario's results in the two-process job and in the reference,
    and the folder holding the job's run folders."""

    two: dict[str, dict[str, np.ndarray]]
    one: dict[str, dict[str, np.ndarray]]
    folder: Path


def _worker(folder, name, devices, scenarios, *options):
    """Starts the worker on every scenario in turn, its stderr going to ``name.log``."""
    command = [sys.executable, HERE / "worker.py", "--devices", str(devices), *options]
    for scenario, flags in scenarios.items():
        out = folder / f"{name}-{scenario}.npz"
        command += ["--scenario", shlex.join(map(str, [out, *flags]))]
    # no compilation cache: the three processes run at once, and one could read an entry
    # another is still writing (their programs differ anyway: the device counts differ)
    env = {k: v for k, v in os.environ.items() if not k.endswith("CACHE_DIR")}
    with open(folder / f"{name}.log", "w") as log:
        return subprocess.Popen(command, stderr=log, env=env)


def _wait(processes, folder, timeout=600):
    """Waits for every process to succeed; on the first failure, stops the others and fails
    with its log (so a crashed process 1 does not leave process 0 waiting for it)."""
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in processes.values()) and time.monotonic() < deadline:
        if any(p.returncode for p in processes.values()):
            break
        time.sleep(0.1)
    for process in processes.values():
        if process.poll() is None:
            process.kill()
            process.wait()
    for name, process in processes.items():
        log = (folder / f"{name}.log").read_text()
        assert process.returncode == 0, f"{name} exited with {process.returncode}:\n{log[-3000:]}"


def _load(path):
    with np.load(path) as results:
        return dict(results)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One two-process job (the worker as processes 0 and 1, 2 CPU devices each) and one
    process on 4 devices, started together, each training every scenario in turn; the tests
    only read their results and run folders."""
    folder = tmp_path_factory.mktemp("distributed")
    address = f"127.0.0.1:{_free_port()}"
    job = ["--coordinator", address, "--processes", "2"]
    scenarios = _scenarios(folder)
    two = {name: flags for name, (flags, _) in scenarios.items()}
    one = {name: flags for name, (_, flags) in scenarios.items()}
    processes = {
        f"p{i}": _worker(folder, f"p{i}", 2, two, *job, "--process-id", str(i)) for i in (0, 1)
    }
    processes["single"] = _worker(folder, "single", 4, one)
    _wait(processes, folder)
    for name in scenarios:
        assert not (folder / f"p1-{name}.npz").exists()  # only process 0 writes
    return Runs(
        two={name: _load(folder / f"p0-{name}.npz") for name in scenarios},
        one={name: _load(folder / f"single-{name}.npz") for name in scenarios},
        folder=folder,
    )


def _assert_same_params(two, one):
    parameters = [name for name in one if "/" in name]
    assert parameters == ["dense_0/b", "dense_0/w", "dense_1/b", "dense_1/w"]
    for name in parameters:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6)


def test_two_processes_train_like_one_process_with_four_devices(runs):
    # with a learning rate halved between epochs (the scale set in the state on every process)
    two, one, run = runs.two["plateau"], runs.one["plateau"], runs.folder / "plateau"
    assert (int(two["processes"]), int(two["devices"])) == (2, 4)
    assert (int(one["processes"]), int(one["devices"])) == (1, 4)
    _assert_same_params(two, one)
    # both processes took part in every epoch's checkpoint; it restores exactly
    assert two["checkpoint_steps"].tolist() == [1, 2, 3]
    assert float(two["restored_difference"]) == 0.0
    assert two["lr_scales"].tolist() == one["lr_scales"].tolist() == [1.0, 1.0, 0.5]
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "model.json",
    ]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_two_processes_streaming_their_shares_train_like_one_process(runs):
    two, one = runs.two["stream"], runs.one["stream"]
    assert (int(two["processes"]), int(one["processes"])) == (2, 1)
    _assert_same_params(two, one)
    # the step rows inside the epochs: at the same steps, the same values, in both runs
    assert (
        two["row_steps"].tolist()
        == one["row_steps"].tolist()
        == [3, 4, 6, 8, 9, 12, 15, 16, 18, 20, 21]
    )
    for key in ("row_train_loss", "row_test_loss"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)


def test_parameters_sharded_across_processes_are_checkpointed_whole(runs):
    two, one = runs.two["model"], runs.one["model"]
    assert int(two["w0_shards"]) == 2  # each process holds 2 of dense_0/w's 4 column blocks
    rows, columns = two["w0_shape"].tolist()
    assert two["w0_shard_shape"].tolist() == [rows, columns // 4]  # split, not copied whole
    _assert_same_params(two, one)
    assert two["checkpoint_steps"].tolist() == [1, 2, 3]
    assert float(two["restored_difference"]) == 0.0  # restored into the sharded state, exactly


def test_a_coordinator_that_never_answers_times_out_clearly():
    code = f"import jaxnet as jn; jn.distributed.initialize('127.0.0.1:{_free_port()}', 2, 1, timeout_s=1)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert re.search(
        r"TimeoutError: no coordinator answered at 127\.0\.0\.1:\d+ within 1 s \(process 1 of 2\)",
        done.stderr,
    )


def test_unknown_mesh_axis_and_too_many_devices():
    mesh = jn.distributed.make_mesh(1)
    params = {"dense_0": {"w": np.zeros((4, 2))}}
    with pytest.raises(
        ValueError,
        match=re.escape(
            "rule '*/w': unknown mesh axis 'modle'; the mesh has axes ('data', 'model')"
        ),
    ):
        jn.distributed.param_specs(params, mesh, {"*/w": PartitionSpec(None, "modle")})
    with pytest.raises(
        ValueError,
        match=re.escape(
            "devices=64 but 1 are visible (cpu); on CPU, XLA_FLAGS=--xla_force_host_platform_device_count=N makes N"
        ),
    ):
        jn.distributed.make_mesh(64)
    with pytest.raises(
        ValueError, match=re.escape("model=3 must be >= 1 and divide the 1 devices")
    ):
        jn.distributed.make_mesh(model=3)


def test_bad_coordinator_address():
    with pytest.raises(
        ValueError, match=re.escape("coordinator address must be 'host:port', got 'localhost'")
    ):
        jn.distributed.initialize("localhost", 2, 1, timeout_s=1)
