"""Tests for jaxnet.runs.checkpoint: exact round trips, retention, atomicity, integrity."""

import doctest
import json
import os
import pathlib
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnet.runs import checkpoint, storage
from jaxnet.runs import manifest as jaxnet_manifest
from jaxnet.runs.checkpoint import (
    Checkpointer,
    CheckpointError,
    CheckpointMismatchError,
    PartialRestore,
    tree_paths,
)


def make_params(width: int = 3) -> dict:
    key_w, key_b = jax.random.split(jax.random.key(1))
    return {
        "dense_0": {
            "w": jax.random.normal(key_w, (4, width)),
            "b": jax.random.normal(key_b, (width,)),
        }
    }


def make_train_state(width: int = 3) -> dict:
    params = make_params(width)
    return {
        "params": params,
        "state": {},
        "opt_state": optax.adam(1e-3).init(params),
        "step": jnp.int32(7),
        "key": jax.random.key(0),
    }


def assert_trees_equal(actual, expected) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for got, want in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert got.dtype == want.dtype
        if jax.dtypes.issubdtype(want.dtype, jax.dtypes.prng_key):
            got, want = jax.random.key_data(got), jax.random.key_data(want)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def saved(tmp_path: pathlib.Path, tree=None, step: int = 7) -> tuple[Checkpointer, pathlib.Path]:
    ckpt = Checkpointer(tmp_path / "run")
    folder = ckpt.save(step, make_train_state() if tree is None else tree)
    return ckpt, folder


# ----------------------------------------------------------------------------- round trips


def test_train_state_round_trips_bit_exactly(tmp_path):
    train_state = make_train_state()
    ckpt, folder = saved(tmp_path, train_state)
    assert folder == tmp_path / "run" / "7"
    restored = ckpt.restore(make_train_state())
    assert_trees_equal(restored, train_state)
    assert restored["state"] == {}
    assert isinstance(restored["opt_state"][0], optax.ScaleByAdamState)


def test_restore_into_abstract_target(tmp_path):
    train_state = make_train_state()
    ckpt, _ = saved(tmp_path, train_state)
    restored = ckpt.restore(jax.eval_shape(make_train_state))
    assert_trees_equal(restored, train_state)
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(restored))


def test_typed_key_draws_the_same_numbers(tmp_path):
    key = jax.random.split(jax.random.key(3))[1]
    ckpt, _ = saved(tmp_path, {"key": key})
    restored = ckpt.restore({"key": jax.random.key(0)})["key"]
    assert jax.random.key_impl(restored) == jax.random.key_impl(key)
    np.testing.assert_array_equal(jax.random.normal(restored, (5,)), jax.random.normal(key, (5,)))


def test_numpy_leaves_and_python_numbers_come_back_as_numpy(tmp_path):
    tree = {"table": np.arange(5, dtype=np.int16), "rate": 0.5}
    ckpt, _ = saved(tmp_path, tree)
    restored = ckpt.restore(tree)
    assert isinstance(restored["table"], np.ndarray)
    np.testing.assert_array_equal(restored["table"], tree["table"])
    assert restored["rate"].dtype == np.float64 and restored["rate"] == 0.5


def test_tree_without_leaves_round_trips(tmp_path):
    ckpt, _ = saved(tmp_path, {"state": {}})
    assert ckpt.restore({"state": {}}) == {"state": {}}


def test_restore_an_older_step(tmp_path):
    ckpt = Checkpointer(tmp_path)
    ckpt.save(1, {"w": jnp.zeros(2)})
    ckpt.save(2, {"w": jnp.ones(2)})
    np.testing.assert_array_equal(ckpt.restore({"w": jnp.ones(2)}, step=1)["w"], jnp.zeros(2))
    np.testing.assert_array_equal(ckpt.restore({"w": jnp.zeros(2)})["w"], jnp.ones(2))


def test_resumed_training_matches_an_unbroken_run(tmp_path):
    optimizer = optax.adam(0.1)

    @jax.jit
    def train_step(train_state: dict) -> dict:
        key, noise_key = jax.random.split(train_state["key"])
        target = jax.random.normal(noise_key, (3,))
        loss = lambda params: jnp.sum((params["dense_0"]["b"] - target) ** 2)  # noqa: E731
        grads = jax.grad(loss)(train_state["params"])
        updates, opt_state = optimizer.update(grads, train_state["opt_state"])
        params = optax.apply_updates(train_state["params"], updates)
        step = train_state["step"] + 1
        return {**train_state, "params": params, "opt_state": opt_state, "step": step, "key": key}

    def run(train_state: dict, steps: int) -> dict:
        for _ in range(steps):
            train_state = train_step(train_state)
        return train_state

    start = {**make_train_state(), "opt_state": optimizer.init(make_params())}
    unbroken = run(start, 4)
    ckpt = Checkpointer(tmp_path)
    ckpt.save(2, run(start, 2))
    resumed = run(ckpt.restore(jax.eval_shape(lambda: start)), 2)
    assert_trees_equal(resumed, unbroken)


def test_tree_paths_names_dict_keys_indices_and_fields():
    paths = tree_paths(make_train_state())
    assert paths["params/dense_0/w"] == ((4, 3), jnp.float32)
    assert paths["opt_state/0/count"] == ((), jnp.int32)
    assert paths["opt_state/0/mu/dense_0/b"] == ((3,), jnp.float32)
    assert paths["key"][0] == ()
    assert "state" not in paths


def test_tree_paths_rejects_colliding_paths():
    with pytest.raises(ValueError, match=r"two leaves share the tree path 'a/b'"):
        tree_paths({"a/b": jnp.zeros(1), "a": {"b": jnp.zeros(1)}})


def test_docstring_examples(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert doctest.testmod(checkpoint, raise_on_error=True).attempted > 0


# ----------------------------------------------------------------------------- retention


def test_retention_keeps_latest_and_best(tmp_path):
    ckpt = Checkpointer(tmp_path, max_to_keep=2, best_mode="max")
    for step, accuracy in [(10, 0.9), (20, 0.5), (30, 0.6), (40, 0.7)]:
        ckpt.save(step, {"w": jnp.full(2, step)}, metric=accuracy)
    assert ckpt.steps() == [10, 30, 40]
    assert ckpt.best_step() == 10
    assert ckpt.latest_step() == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "30", "40"]


def test_best_mode_min_and_ties_go_to_the_earlier_step(tmp_path):
    ckpt = Checkpointer(tmp_path, max_to_keep=1, best_mode="min")
    for step, loss in [(1, 0.8), (2, 0.3), (3, 0.3), (4, 0.9)]:
        ckpt.save(step, {"w": jnp.zeros(1)}, metric=loss)
    assert ckpt.best_step() == 2
    assert ckpt.steps() == [2, 4]


def test_saves_without_metric_are_never_best(tmp_path):
    ckpt = Checkpointer(tmp_path, max_to_keep=1)
    ckpt.save(1, {"w": jnp.zeros(1)})
    assert ckpt.best_step() is None
    ckpt.save(2, {"w": jnp.zeros(1)}, metric=0.1)
    ckpt.save(3, {"w": jnp.zeros(1)})
    assert ckpt.steps() == [2, 3]
    assert ckpt.best_step() == 2


def test_no_checkpoints(tmp_path):
    ckpt = Checkpointer(tmp_path / "absent")
    assert ckpt.steps() == []
    assert ckpt.latest_step() is None
    assert ckpt.best_step() is None
    with pytest.raises(FileNotFoundError, match="no checkpoint in"):
        ckpt.restore({"w": jnp.zeros(1)})


def test_unknown_step_raises(tmp_path):
    ckpt, _ = saved(tmp_path, {"w": jnp.zeros(1)})
    with pytest.raises(FileNotFoundError, match=r"no checkpoint for step 8 .*saved steps: \[7\]"):
        ckpt.restore({"w": jnp.zeros(1)}, step=8)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_to_keep": 0}, "max_to_keep must be an int >= 1, got 0"),
        ({"best_mode": "mean"}, "best_mode must be 'max' or 'min', got 'mean'"),
    ],
)
def test_constructor_validates(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Checkpointer(tmp_path, **kwargs)


@pytest.mark.parametrize(
    ("step", "metric", "message"),
    [
        (-1, None, "step must be a non-negative int, got -1"),
        (True, None, "step must be a non-negative int, got True"),
        (1, float("nan"), "metric must be a finite number or None, got nan"),
    ],
)
def test_save_validates_step_and_metric(tmp_path, step, metric, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Checkpointer(tmp_path).save(step, {"w": jnp.zeros(1)}, metric=metric)
    assert list(tmp_path.iterdir()) == []


def test_save_refuses_an_existing_step(tmp_path):
    ckpt, _ = saved(tmp_path, {"w": jnp.zeros(1)})
    with pytest.raises(ValueError, match="a checkpoint for step 7 exists already"):
        ckpt.save(7, {"w": jnp.ones(1)})
    np.testing.assert_array_equal(ckpt.restore({"w": jnp.ones(1)})["w"], jnp.zeros(1))


# ----------------------------------------------------------------------------- atomicity


def test_failed_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    ckpt, _ = saved(tmp_path, {"w": jnp.zeros(2)}, step=1)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.manifest, "write", crash)  # after orbax wrote the arrays
    with pytest.raises(OSError, match="disk full") as info:
        ckpt.save(2, {"w": jnp.ones(2)})
    assert info.value.filename == str(tmp_path / "run" / "2")
    assert ckpt.steps() == [1]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["1"]
    np.testing.assert_array_equal(ckpt.restore({"w": jnp.ones(2)})["w"], jnp.zeros(2))


def test_unserializable_leaf_writes_nothing(tmp_path):
    ckpt, _ = saved(tmp_path, {"w": jnp.zeros(2)}, step=1)
    with pytest.raises(TypeError, match="checkpoint leaf name: expected an array, got str"):
        ckpt.save(2, {"w": jnp.zeros(2), "name": "run-1"})
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["1"]


def test_incomplete_folders_are_not_checkpoints(tmp_path):
    ckpt, _ = saved(tmp_path, {"w": jnp.zeros(2)}, step=1)
    (tmp_path / "run" / "5").mkdir()  # a step folder without manifest
    (tmp_path / "run" / ".tmp-6-abc").mkdir()  # a save killed midway
    assert ckpt.steps() == [1]
    with pytest.raises(
        CheckpointError, match=r"5 has no manifest.json: it is damaged or was not written by jaxnet"
    ):
        ckpt.restore({"w": jnp.zeros(2)}, step=5)


# ----------------------------------------------------------------------------- mismatches


def test_mismatch_lists_missing_unexpected_and_reshaped_paths(tmp_path):
    ckpt, folder = saved(tmp_path, {"params": {"dense_0": {"w": jnp.zeros((64, 32))}}})
    target = {"params": {"dense_0": {"w": jnp.zeros((64, 16))}, "dense_1": {"b": jnp.zeros(4)}}}
    with pytest.raises(CheckpointMismatchError) as info:
        ckpt.restore(target)
    error = info.value
    assert error.reshaped == ("params/dense_0/w",)
    assert error.missing == ("params/dense_1/b",)
    assert error.unexpected == ()
    message = str(error)
    assert f"checkpoint {folder} does not match the restore target" in message
    assert "reshaped: params/dense_0/w saved (64, 32), expected (64, 16)" in message
    assert "missing: params/dense_1/b expected (4,) float32" in message


def test_mismatch_of_another_structure(tmp_path):
    ckpt, _ = saved(tmp_path)
    target = {"params": make_params(), "step": jnp.float32(0)}
    with pytest.raises(
        CheckpointMismatchError, match="retyped: step saved int32, expected float32"
    ):
        ckpt.restore(target)
    try:
        ckpt.restore(target)
    except CheckpointMismatchError as error:
        assert "opt_state/0/count" in error.unexpected and "key" in error.unexpected
        assert error.retyped == ("step",) and error.missing == ()
        assert "unexpected: opt_state/0/mu/dense_0/w saved (4, 3) float32" in str(error)


def test_partial_restore_takes_matching_paths(tmp_path):
    train_state = make_train_state(width=3)
    ckpt, _ = saved(tmp_path, train_state)
    target = {"params": make_params(width=5), "step": jnp.int32(0), "head": jnp.ones(2)}
    tree, report = ckpt.restore_partial(target)
    assert report == PartialRestore(
        restored=("step",),
        skipped=("head", "params/dense_0/b", "params/dense_0/w"),
        unused=tuple(p for p in tree_paths(train_state) if p.startswith(("key", "opt_state"))),
    )
    assert int(tree["step"]) == 7
    assert tree["params"] is not target["params"]
    assert_trees_equal(tree["params"], target["params"])
    assert_trees_equal(ckpt.restore(target, strict=False), tree)


def test_partial_restore_of_a_pretrained_body(tmp_path):
    body = make_params()
    ckpt, _ = saved(tmp_path, {"params": body})
    target = {"params": {**make_params(), "head": {"w": jnp.zeros((3, 2))}}}
    tree, report = ckpt.restore_partial(target)
    assert report.skipped == ("params/head/w",)
    assert_trees_equal(tree["params"]["dense_0"], body["dense_0"])


def test_partial_restore_keeps_abstract_leaves_it_cannot_fill(tmp_path):
    ckpt, _ = saved(tmp_path, {"w": jnp.ones(2)})
    head = jax.ShapeDtypeStruct((3,), jnp.float32)
    tree, report = ckpt.restore_partial({"w": jax.ShapeDtypeStruct((2,), jnp.float32), "h": head})
    assert report == PartialRestore(restored=("w",), skipped=("h",), unused=())
    assert tree["h"] is head
    np.testing.assert_array_equal(tree["w"], jnp.ones(2))


# ----------------------------------------------------------------------------- integrity


def largest_data_file(folder: pathlib.Path) -> pathlib.Path:
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "manifest.json"]
    return max(files, key=lambda p: p.stat().st_size)


def truncate(file: pathlib.Path) -> None:
    file.write_bytes(file.read_bytes()[:-1])


def flip_last_byte(file: pathlib.Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (truncate, r"file {rel} has \d+ bytes, the manifest says \d+"),
        (flip_last_byte, r"file {rel} was modified \(sha256 differs\)"),
        (lambda file: file.unlink(), r"file {rel} is missing"),
        (lambda file: file.with_name("extra").write_bytes(b"x"), r"file {extra} is not in"),
    ],
)
def test_tampered_file_is_refused(tmp_path, tamper, message):
    ckpt, folder = saved(tmp_path)
    file = largest_data_file(folder)
    tamper(file)
    rel = file.relative_to(folder).as_posix()
    extra = file.with_name("extra").relative_to(folder).as_posix()
    expected = re.escape(f"checkpoint {folder}: ") + message.format(rel=rel, extra=extra)
    with pytest.raises(CheckpointError, match=expected):
        ckpt.restore(make_train_state())


def symlink_elsewhere(file: pathlib.Path) -> None:
    outside = file.parent.parent / "outside.json"
    outside.write_bytes(file.read_bytes())
    file.unlink()
    file.symlink_to(outside)


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (truncate, r"file extra-0.json has \d+ bytes, the manifest says \d+"),
        (flip_last_byte, r"file extra-0.json was modified \(sha256 differs\)"),
        (lambda file: file.unlink(), r"file extra-0.json is missing"),
        (symlink_elsewhere, r".*/extra-0.json is a symbolic link; refused"),
    ],
)
def test_tampered_extra_is_refused_as_restore_would(tmp_path, tamper, message):
    ckpt = Checkpointer(tmp_path / "run")
    folder = ckpt.save(7, {"w": jnp.ones(2)}, extra={"batches": 3})
    tamper(folder / "extra-0.json")
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {folder}: ") + message):
        ckpt.extra(7)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {folder}: ") + message):
        jaxnet_manifest.verify(folder)


def test_symlink_inside_checkpoint_is_refused(tmp_path):
    ckpt, folder = saved(tmp_path)
    file = largest_data_file(folder)
    (tmp_path / "outside").write_bytes(file.read_bytes())
    file.unlink()
    file.symlink_to(tmp_path / "outside")
    with pytest.raises(CheckpointError, match=re.escape(f"{file} is a symbolic link; refused")):
        ckpt.restore(make_train_state())


def test_symlinked_step_folder_is_refused(tmp_path):
    ckpt, folder = saved(tmp_path)
    os.symlink(folder, folder.with_name("8"))
    assert ckpt.steps() == [7]
    with pytest.raises(CheckpointError, match=r"/run/8 is a symbolic link; refused"):
        ckpt.restore(make_train_state(), step=8)


def test_special_file_is_refused(tmp_path):
    ckpt, folder = saved(tmp_path)
    os.mkfifo(folder / "pipe")
    with pytest.raises(
        CheckpointError, match=re.escape(f"{folder / 'pipe'} is not a regular file")
    ):
        ckpt.restore(make_train_state())


def edit_manifest(folder: pathlib.Path, edit, *, checksum: bool = True) -> None:
    """Edit manifest.json by hand; with ``checksum`` as a forger would, with a matching
    checksum, so that the checks behind the checksum are reached."""
    file = folder / "manifest.json"
    manifest = json.loads(file.read_text())
    edit(manifest)
    if checksum:
        manifest["checksum"] = jaxnet_manifest._checksum(manifest)
    file.write_text(json.dumps(manifest))


@pytest.mark.parametrize("escape", ["../outside", "/etc/passwd", "arrays/../../outside"])
def test_manifest_path_escaping_the_folder_is_refused(tmp_path, escape):
    ckpt, folder = saved(tmp_path)
    (tmp_path / "outside").write_bytes(b"x")
    entry = {"size": 1, "sha256": "0" * 64}
    edit_manifest(folder, lambda manifest: manifest["files"].update({escape: entry}))
    message = f"manifest path {escape!r} leaves the folder"
    with pytest.raises(CheckpointError, match=re.escape(message)):
        ckpt.restore(make_train_state())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda manifest: manifest.pop("leaves"), "no entry 'leaves'"),
        (
            lambda manifest: manifest.update(leaves=manifest["leaves"] * 2),
            "leaf path appears twice",
        ),
        (lambda manifest: manifest.update(format="other/9"), "format 'other/9', expected"),
    ],
)
def test_malformed_manifest_is_refused(tmp_path, edit, message):
    ckpt, folder = saved(tmp_path)
    edit_manifest(folder, edit)
    with pytest.raises(CheckpointError, match=r"manifest\.json is malformed .*" + message):
        ckpt.restore(make_train_state())


def test_manifest_that_is_not_json_is_refused(tmp_path):
    ckpt, folder = saved(tmp_path)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"manifest\.json is malformed"):
        ckpt.restore(make_train_state())


def test_manifest_of_another_step_is_refused(tmp_path):
    ckpt, folder = saved(tmp_path)
    folder.rename(folder.with_name("9"))
    with pytest.raises(CheckpointError, match=r"manifest\.json says step 7"):
        ckpt.restore(make_train_state(), step=9)


# ----------------------------------------------------------------------------- format


@pytest.mark.filterwarnings("ignore:Sharding info not provided when restoring")  # plain orbax's
def test_plain_orbax_reads_the_arrays_under_their_tree_paths(tmp_path):
    import orbax.checkpoint as ocp

    train_state = make_train_state()
    _, folder = saved(tmp_path, train_state)
    with ocp.PyTreeCheckpointer() as reader:
        metadata = reader.metadata(folder / "arrays").item_metadata.tree
        restored = reader.restore(folder / "arrays")
    assert set(metadata) == {"params", "opt_state", "step", "key"}
    assert set(metadata["params"]["dense_0"]) == {"w", "b"}
    assert set(metadata["opt_state"]["0"]) == {"count", "mu", "nu"}
    np.testing.assert_array_equal(
        restored["params"]["dense_0"]["w"], train_state["params"]["dense_0"]["w"]
    )
    np.testing.assert_array_equal(
        restored["opt_state"]["0"]["mu"]["dense_0"]["b"],
        train_state["opt_state"][0].mu["dense_0"]["b"],
    )
    np.testing.assert_array_equal(restored["key"], jax.random.key_data(train_state["key"]))


def test_checkpoints_of_the_first_format_are_still_read(tmp_path):
    """Format 1 stored the leaves as a flat dict {"0": leaf_0, ...} and had no checksum."""
    import orbax.checkpoint as ocp

    train_state = make_train_state()
    folder = tmp_path / "run" / "7"
    folder.mkdir(parents=True)
    table = storage.leaf_table(train_state)
    values = [
        jax.random.key_data(leaf) if storage.is_key(leaf.dtype) else leaf
        for leaf in jax.tree.leaves(train_state)
    ]
    with ocp.PyTreeCheckpointer() as writer:
        writer.save(folder / "arrays", {str(i): value for i, value in enumerate(values)})
    manifest = {
        "format": "jaxnet.checkpoint/1",
        "step": 7,
        "metric": None,
        "leaves": [{"path": p, **leaf._asdict()} for p, leaf in table.items()],
        "files": {r: e._asdict() for r, e in jaxnet_manifest._file_table(folder).items()},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    restored = Checkpointer(tmp_path / "run").restore(make_train_state())
    assert_trees_equal(restored, train_state)


def test_an_edited_manifest_fails_its_checksum(tmp_path):
    ckpt, folder = saved(tmp_path)
    edit_manifest(folder, lambda manifest: manifest.update(metric=0.5), checksum=False)
    message = f"checkpoint {folder}: manifest.json is malformed (its checksum does not match its contents: edited or damaged)"
    with pytest.raises(CheckpointError, match=f"^{re.escape(message)}$"):
        ckpt.restore(make_train_state())


def test_paths_that_orbax_would_confuse_are_refused(tmp_path):
    tree = {"a.b": jnp.ones(2), "a": {"b": jnp.zeros(2)}}
    message = "the tree paths 'a/b' and 'a.b' have the same orbax name 'a.b'"
    with pytest.raises(ValueError, match=re.escape(message)):
        Checkpointer(tmp_path / "run").save(1, tree)
    assert not (tmp_path / "run" / "1").exists()


def test_a_host_copy_keeps_the_values_of_when_it_was_taken(tmp_path):
    ckpt = Checkpointer(tmp_path / "run")
    tree = {"w": jnp.arange(4.0), "key": jax.random.key(3)}
    copy = checkpoint.host_copy(tree)
    donated = jax.jit(lambda t: jax.tree.map(lambda x: x, t), donate_argnums=0)(tree)
    del donated  # the device buffers of `tree` are gone; the copy lives in host memory
    ckpt.save(1, copy)
    restored = ckpt.restore({"w": jnp.zeros(4), "key": jax.random.key(0)})
    np.testing.assert_array_equal(restored["w"], np.arange(4.0))
    assert (
        jax.random.key_data(restored["key"]).tolist()
        == jax.random.key_data(jax.random.key(3)).tolist()
    )


def test_a_damaged_folder_of_the_same_step_is_replaced_by_a_save(tmp_path):
    ckpt, folder = saved(tmp_path, {"w": jnp.zeros(2)}, step=1)
    (folder / "manifest.json").unlink()
    assert ckpt.steps() == []
    ckpt.save(1, {"w": jnp.ones(2)})
    np.testing.assert_array_equal(ckpt.restore({"w": jnp.zeros(2)})["w"], jnp.ones(2))
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["1"]
    with pytest.raises(ValueError, match="a checkpoint for step 1 exists already"):
        ckpt.save(1, {"w": jnp.ones(2)})


def test_verified_step_passes_over_damaged_newer_folders_and_set_aside_moves_them(tmp_path):
    ckpt = Checkpointer(tmp_path / "run", max_to_keep=5)
    for step in (1, 2, 3, 4):
        ckpt.save(step, {"w": jnp.full(2, float(step))})
    (tmp_path / "run" / "4" / "manifest.json").write_text("{")
    (tmp_path / "run" / "3" / "manifest.json").unlink()
    (tmp_path / "run" / "2").rename(tmp_path / "run" / "5")  # says step 2 in its manifest
    step, passed_over = ckpt.verified_step()
    assert step == 1
    assert list(passed_over) == [5, 4, 3]
    assert str(passed_over[5]).endswith("manifest.json says step 2")
    assert "4: manifest.json is malformed" in str(passed_over[4])
    assert "3 has no manifest.json" in str(passed_over[3])
    for damaged in passed_over:
        aside = ckpt.set_aside(damaged)
        assert aside.name.startswith(f"damaged-{damaged}-") and aside.is_dir()
    assert ckpt.steps() == [1] and ckpt.latest_step() == 1
    ckpt.save(5, {"w": jnp.zeros(2)})  # a step that was set aside can be saved again
    assert ckpt.steps() == [1, 5]
