"""Data parallelism, parameter sharding and two processes, against single-device training.

Several CPU devices need ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` before JAX
starts, so these tests run their training in subprocesses.
"""

import json
import re
import socket
import subprocess
import sys
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


def test_sharded_training_equals_single_device():
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


def _two_processes(tmp_path, *options):
    """Runs the worker as processes 0 and 1 of one job (2 CPU devices each); returns p0.npz."""
    address = f"127.0.0.1:{_free_port()}"
    worker = HERE / "worker.py"
    common = ["--devices", "2", "--coordinator", address, "--processes", "2", *options]
    processes = [
        subprocess.Popen(
            [sys.executable, worker, tmp_path / f"p{i}.npz", *common, "--process-id", str(i)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    assert not (tmp_path / "p1.npz").exists()  # only process 0 writes
    return np.load(tmp_path / "p0.npz")


def _assert_same_params(two, one):
    parameters = [name for name in one.files if "/" in name]
    assert parameters == ["dense_0/b", "dense_0/w", "dense_1/b", "dense_1/w"]
    for name in parameters:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-6)


def test_two_processes_train_like_one_process_with_four_devices(tmp_path):
    # with a learning rate halved between epochs (the scale set in the state on every process)
    two = _two_processes(tmp_path, "--run-dir", tmp_path / "run", "--plateau")
    _python(HERE / "worker.py", tmp_path / "single.npz", "--devices", "4", "--plateau")
    one = np.load(tmp_path / "single.npz")
    assert (int(two["processes"]), int(two["devices"])) == (2, 4)
    assert (int(one["processes"]), int(one["devices"])) == (1, 4)
    _assert_same_params(two, one)
    # both processes took part in every epoch's checkpoint; it restores exactly
    assert two["checkpoint_steps"].tolist() == [1, 2, 3]
    assert float(two["restored_difference"]) == 0.0
    assert two["lr_scales"].tolist() == one["lr_scales"].tolist() == [1.0, 1.0, 0.5]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "model.json",
    ]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3


def test_two_processes_streaming_their_shares_train_like_one_process(tmp_path):
    two = _two_processes(tmp_path, "--stream")
    _python(HERE / "worker.py", tmp_path / "single.npz", "--devices", "4", "--stream")
    one = np.load(tmp_path / "single.npz")
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


def test_parameters_sharded_across_processes_are_checkpointed_whole(tmp_path):
    two = _two_processes(tmp_path, "--model", "4", "--run-dir", tmp_path / "run")
    _python(HERE / "worker.py", tmp_path / "single.npz", "--devices", "4", "--model", "4")
    one = np.load(tmp_path / "single.npz")
    assert int(two["w0_shards"]) == 2  # each process holds 2 of dense_0/w's 4 column blocks
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
