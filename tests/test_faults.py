"""Fault injection on run folders: kill -9 at chosen moments, a disk that fills up, damaged files.

Each scenario runs ``fit`` in a child process that kills itself (SIGKILL, no clean-up of any
kind) at one moment, or hits a file-size limit (``RLIMIT_FSIZE`` makes writes fail like a full
disk; as root, permissions would not stop them). A second child resumes the run. The resumed
run must end with bit for bit the parameters, optimizer state and metrics of a run that was
never interrupted, with one ``metrics.jsonl`` row per epoch and no leftovers.
"""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

import jaxnet as jn
from jaxnet.train import Checkpointer, CheckpointError

EPOCHS = 6

# The child: trains the xor recipe for EPOCHS epochs with a checkpoint after every epoch, and
# dies (SIGKILL) or fills the disk at the moment named by argv[2]. The hooks wrap library
# functions in the child only; the library itself is unchanged.
CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    import jax
    import jaxnet as jn
    from jaxnet import atomic
    from jaxnet.runs import checkpoint, storage

    run_dir, moment, resume = sys.argv[1], sys.argv[2], sys.argv[3] == "resume"
    asynchronous = sys.argv[4] == "async"

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def after_epoch(n, action):
        def callback(row, state):
            if row["epoch"] == n:
                action()
        return callback

    def wrap(module, name, before=None, after=None):
        original = getattr(module, name)
        def wrapped(*args, **kwargs):
            if before is not None:
                before(*args, **kwargs)
            result = original(*args, **kwargs)
            if after is not None:
                after(*args, **kwargs)
            return result
        setattr(module, name, wrapped)

    def fill_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        # the shared compilation cache is read, no longer written: a cut-off entry would
        # break every other process of the test run that reads it
        jax.config.update("jax_persistent_cache_min_compile_time_secs", float("inf"))
        resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))

    callbacks = []
    if moment == "before-first-checkpoint":
        wrap(checkpoint.Checkpointer, "save", before=lambda self, step, *a, **k: die())
    elif moment == "between-epochs":
        callbacks.append(after_epoch(3, die))
    elif moment == "during-checkpoint-write":  # arrays written, no manifest, not renamed
        wrap(storage, "write_arrays", after=lambda saver, folder, copy: (
            die() if folder.name.startswith(".tmp-4-") else None))
        checkpoint.write_arrays = storage.write_arrays
    elif moment == "during-checkpoint-delete":  # renamed to .deleting-*, not yet removed
        wrap(checkpoint.shutil, "rmtree", before=lambda path, *a, **k: (
            die() if ".deleting-" in str(path) else None))
    elif moment == "during-metrics-rewrite":  # the resume's rewrite of metrics.jsonl
        def replace_then_die(src, dst, *a, **k):
            if resume and str(dst).endswith("metrics.jsonl"):
                die()
        wrap(atomic.os, "replace", before=replace_then_die)
    elif moment == "disk-full":
        callbacks.append(after_epoch(3, fill_disk))

    job = jn.recipes.build(jn.recipes.make_config("xor", epochs=EPOCHS))
    policy = jn.train.Checkpointing(every=1, keep=2, asynchronous=asynchronous)
    try:
        job.fit(run_dir=run_dir, resume=resume, progress=False, checkpointing=policy,
                callbacks=callbacks)
    except OSError as error:
        print(f"OSError {error.errno} {error.filename}", flush=True)
        sys.exit(74)
    """
).replace("EPOCHS", str(EPOCHS))


def _child(run_dir: pathlib.Path, moment: str, *, resume: bool, mode: str = "async"):
    args = [str(run_dir), moment, "resume" if resume else "fresh", mode]
    return subprocess.run(  # the child inherits the worker's compilation cache (conftest.py)
        [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=300
    )


def _final(run_dir: pathlib.Path) -> tuple[dict, list[dict]]:
    """The newest checkpoint's leaves as NumPy (keys as key data) and the metrics rows without
    their timings."""
    job = jn.recipes.build(json.loads((run_dir / "config.json").read_text()))
    state = Checkpointer(run_dir / "checkpoints").restore(job.initial_state())
    state = state._replace(key=jax.random.key_data(state.key))
    leaves = {
        jax.tree_util.keystr(path): np.asarray(leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]
    }
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    rows = [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines]
    return leaves, rows


def _leftovers(run_dir: pathlib.Path) -> list[str]:
    return sorted(
        str(p.relative_to(run_dir))
        for p in run_dir.rglob("*")
        if p.name.startswith((".tmp-", ".deleting-"))
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    done = _child(run_dir, "none", resume=False)
    assert done.returncode == 0, done.stderr
    return _final(run_dir)


def _assert_same_run(run_dir: pathlib.Path, reference) -> None:
    leaves, rows = _final(run_dir)
    want_leaves, want_rows = reference
    assert [row["epoch"] for row in rows] == list(range(1, EPOCHS + 1))
    assert rows == want_rows
    assert leaves.keys() == want_leaves.keys()
    for path, leaf in leaves.items():
        np.testing.assert_array_equal(leaf, want_leaves[path], err_msg=path)
    assert _leftovers(run_dir) == []


@pytest.mark.parametrize(
    ("moment", "mode"),
    [
        ("before-first-checkpoint", "async"),
        ("between-epochs", "async"),
        ("during-checkpoint-write", "async"),
        ("during-checkpoint-delete", "async"),
    ],
)
def test_kill_9_then_resume_is_bit_for_bit(tmp_path, uninterrupted, moment, mode):
    run_dir = tmp_path / "run"
    killed = _child(run_dir, moment, resume=False, mode=mode)
    assert killed.returncode == -9, killed.stderr
    if moment == "during-checkpoint-write":
        assert any(".tmp-4-" in name for name in _leftovers(run_dir))
        assert Checkpointer(run_dir / "checkpoints").latest_step() == 3
    if moment == "during-checkpoint-delete":
        assert any(".deleting-" in name for name in _leftovers(run_dir))
    resumed = _child(run_dir, "none", resume=True, mode=mode)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(run_dir, uninterrupted)


def test_kill_9_during_the_metrics_rewrite_of_a_resume(tmp_path, uninterrupted):
    run_dir = tmp_path / "run"
    assert _child(run_dir, "between-epochs", resume=False).returncode == -9
    before = (run_dir / "metrics.jsonl").read_bytes()
    killed = _child(run_dir, "during-metrics-rewrite", resume=True)
    assert killed.returncode == -9, killed.stderr
    assert (run_dir / "metrics.jsonl").read_bytes() == before  # the old file, whole
    resumed = _child(run_dir, "none", resume=True)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(run_dir, uninterrupted)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_full_disk_keeps_the_last_good_checkpoint_and_resumes(tmp_path, uninterrupted, mode):
    run_dir = tmp_path / "run"
    full = _child(run_dir, "disk-full", resume=False, mode=mode)
    assert full.returncode == 74, full.stderr
    errno_, filename = full.stdout.split()[1:]
    assert int(errno_) == 27  # EFBIG: the file-size limit, as a full disk's ENOSPC would be
    assert str(run_dir) in filename
    checkpoints = Checkpointer(run_dir / "checkpoints")
    if mode == "sync":
        assert checkpoints.latest_step() == 3  # the epoch before the disk filled up
        assert filename == str(run_dir / "metrics.jsonl")  # epoch 4's first write
    else:
        # Epoch 3 submits checkpoint 3 only once checkpoint 2 has started (at most one waits
        # behind the one being written) and its callback fills the disk right after, within a
        # millisecond; a checkpoint takes a hundred or more to write. So checkpoint 2 is the
        # write in flight that fails (several of its files are over the limit), and the jobs
        # queued behind it (checkpoint 3) are dropped.
        assert checkpoints.latest_step() == 1
        assert filename == str(run_dir / "checkpoints" / "2")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    epochs = [json.loads(line)["epoch"] for line in lines]  # whole lines, one per epoch
    assert epochs == list(range(1, len(epochs) + 1))
    assert len(epochs) >= checkpoints.latest_step()  # at least the rows of the checkpoint
    json.loads((run_dir / "config.json").read_text())
    assert [p for p in _leftovers(run_dir) if "checkpoints" in p] == []  # rolled back
    resumed = _child(run_dir, "none", resume=True, mode=mode)
    assert resumed.returncode == 0, resumed.stderr
    _assert_same_run(run_dir, uninterrupted)


# ----------------------------------------------------------------------------- damaged files

XOR = jn.data.load("xor")
NET = jn.serial(jn.nn.Dense(4), jn.nn.Tanh, jn.nn.Dense(2))


def _fit(run_dir, **kwargs):
    options = {"optimizer": optax.adam(0.05), "loss": jn.losses.softmax_cross_entropy}
    options |= {"epochs": 4, "batch_size": 32, "progress": False, "run_dir": run_dir}
    options |= {"checkpointing": jn.train.Checkpointing(every=1, keep=5)}
    return jn.train.fit(NET, XOR, **(options | kwargs))


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A finished 4-epoch run folder with checkpoints 1..4, and its result: trained once, read
    by every test below through a copy of its own."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = _fit(run_dir)
    assert Checkpointer(run_dir / "checkpoints").steps() == [1, 2, 3, 4]
    return run_dir, result


@pytest.fixture
def trained(trained_once, tmp_path):
    """This test's own copy of the trained run folder (tests damage and resume it), and its
    result."""
    source, result = trained_once
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    return run_dir, result


def _rewrite_rows(run_dir, edit):
    file = run_dir / "metrics.jsonl"
    lines = edit(file.read_text().splitlines(keepends=True))
    file.write_text("".join(lines))


def test_resume_takes_the_epoch_from_the_checkpoint_and_drops_later_rows(trained):
    run_dir, _ = trained
    checkpoints = Checkpointer(run_dir / "checkpoints")
    shutil.rmtree(run_dir / "checkpoints" / "4")  # as if killed after row 4, before its save
    assert checkpoints.latest_step() == 3
    result = _fit(run_dir, resume=True, epochs=5)
    assert [row["epoch"] for row in result.history] == [1, 2, 3, 4, 5]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]


def test_duplicated_row_is_an_error_naming_the_file(trained):
    run_dir, _ = trained
    _rewrite_rows(run_dir, lambda lines: [*lines[:3], lines[2], *lines[3:]])
    message = f"{run_dir / 'metrics.jsonl'}: row 4 repeats epoch 3; the file must hold one row per epoch 1..4 (the newest checkpoint is at epoch 4)"
    with pytest.raises(jn.train.RunFolderError, match=f"^{re.escape(message)}$"):
        _fit(run_dir, resume=True, epochs=6)


def test_emptied_metrics_is_an_error_and_writes_no_checkpoint(trained):
    run_dir, _ = trained
    (run_dir / "metrics.jsonl").write_text("")
    message = f"{run_dir / 'metrics.jsonl'}: has no rows, but the newest checkpoint is at epoch 4: the rows of epochs 1..4 are missing"
    with pytest.raises(jn.train.RunFolderError, match=f"^{re.escape(message)}$"):
        _fit(run_dir, resume=True, epochs=6)
    assert Checkpointer(run_dir / "checkpoints").steps() == [1, 2, 3, 4]


def test_cut_off_metrics_names_the_file_and_line(trained):
    run_dir, _ = trained
    _rewrite_rows(run_dir, lambda lines: [*lines[:2], lines[2][:17]])
    message = f"{run_dir / 'metrics.jsonl'}: line 3 is not valid JSON"
    with pytest.raises(jn.train.RunFolderError, match=f"^{re.escape(message)}"):
        _fit(run_dir, resume=True, epochs=6)
    with pytest.raises(jn.train.RunFolderError, match=f"^{re.escape(message)}"):
        jn.train.RunFolder(run_dir).read_metrics()


def test_cut_off_config_names_the_file_and_line(trained):
    run_dir, _ = trained
    text = (run_dir / "config.json").read_text()
    (run_dir / "config.json").write_text(text[: len(text) // 2])
    with pytest.raises(
        jn.train.RunFolderError,
        match=rf"^{re.escape(str(run_dir / 'config.json'))}: line \d+ is not valid JSON",
    ):
        jn.train.RunFolder(run_dir).read_config()


def test_swapped_manifest_entries_are_refused(trained):
    run_dir, _ = trained
    file = run_dir / "checkpoints" / "4" / "manifest.json"
    manifest = json.loads(file.read_text())
    paths = [leaf["path"] for leaf in manifest["leaves"]]
    w, mu = paths.index("params/dense_0/w"), paths.index("opt_state/0/mu/dense_0/w")
    manifest["leaves"][w]["path"], manifest["leaves"][mu]["path"] = paths[mu], paths[w]
    file.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="checksum does not match its contents"):
        Checkpointer(run_dir / "checkpoints").restore(jn.train.initial_state(NET, _adam(), XOR), 4)


def _adam():
    return optax.adam(0.05)


def test_deleted_manifest_is_refused_by_name_and_resume_replaces_it(trained):
    run_dir, result = trained
    (run_dir / "checkpoints" / "4" / "manifest.json").unlink()
    checkpoints = Checkpointer(run_dir / "checkpoints")
    target = jn.train.initial_state(NET, _adam(), XOR)
    with pytest.raises(CheckpointError, match=r"4 has no manifest.json: .*pass step=3"):
        checkpoints.restore(target)
    with pytest.warns(jn.train.CheckpointWarning, match="resuming from epoch 3, passing over"):
        resumed = _fit(run_dir, resume=True, epochs=4)
    assert checkpoints.steps() == [1, 2, 3, 4]  # step 4 saved again, never "exists already"
    jax.tree.map(
        np.testing.assert_array_equal, resumed.train_state.params, result.train_state.params
    )
    [aside] = (run_dir / "checkpoints").glob("damaged-4-*")  # kept for inspection
    assert not (aside / "manifest.json").exists()


def test_damaged_arrays_of_the_newest_never_outlive_the_good_checkpoints(trained):
    """A checkpoint whose manifest is intact but whose arrays were damaged: the resume passes
    over it and sets it aside, so retention keeps only good checkpoints."""
    run_dir, result = trained
    arrays = sorted(p for p in (run_dir / "checkpoints" / "4" / "arrays").rglob("*") if p.is_file())
    damaged = max(arrays, key=lambda p: p.stat().st_size)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    keep_one = jn.train.Checkpointing(every=1, keep=1)
    with pytest.warns(
        jn.train.CheckpointWarning, match=r"passing over .*sha256 differs.*moved to damaged-4-"
    ):
        resumed = _fit(run_dir, resume=True, epochs=4, checkpointing=keep_one)
    checkpoints = Checkpointer(run_dir / "checkpoints")
    assert checkpoints.verified_step() == (4, {})
    jax.tree.map(
        np.testing.assert_array_equal, resumed.train_state.params, result.train_state.params
    )


def test_malformed_manifest_of_the_newest_is_refused_by_load(trained):
    run_dir, _ = trained
    (run_dir / "checkpoints" / "4" / "manifest.json").write_text("{cut off")
    checkpoints = Checkpointer(run_dir / "checkpoints")
    with pytest.raises(CheckpointError, match=r"4: manifest.json is malformed .*pass step=3"):
        checkpoints.restore(jn.train.initial_state(NET, _adam(), XOR))


def test_leftovers_of_a_killed_run_are_removed_on_the_next_start(trained):
    run_dir, _ = trained
    for leftover in (
        run_dir / ".tmp-metrics.jsonl-abc",
        run_dir / "checkpoints" / ".tmp-5-xyz",
        run_dir / "checkpoints" / ".deleting-1-abc",
    ):
        leftover.mkdir() if "checkpoints" in str(leftover) else leftover.write_text("x")
    (run_dir / "checkpoints" / ".tmp-5-xyz" / "arrays").mkdir()
    _fit(run_dir, resume=True, epochs=5)
    assert _leftovers(run_dir) == []


def test_resume_of_a_run_killed_before_its_first_checkpoint_starts_over(tmp_path, trained_once):
    run_dir = tmp_path / "run"
    _, reference = trained_once  # the same fit, uninterrupted
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"epochs": 4}))
    resumed = _fit(run_dir, resume=True)
    jax.tree.map(
        np.testing.assert_array_equal, resumed.train_state.params, reference.train_state.params
    )


def test_resume_of_a_folder_that_holds_no_run(tmp_path):
    message = f"fit: cannot resume: {str(tmp_path)!r} holds no run (no checkpoint, no config.json)"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        _fit(tmp_path, resume=True)
