"""jn.export of models whose inputs are a tuple or dict of arrays: one forward pass on the raw
tree with one symbolic batch for every part, per-part standardization in safetensors by path,
the inputs as a tree in signature.json, and the errors."""

from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import jax
import numpy as np
import optax
import pytest
import safetensors.numpy

import jaxnet as jn
from jaxnet import cli
from jaxnet.data.preprocessing import TreePreprocessing
from jaxnet.export import COMPATIBILITY, COMPATIBILITY_MONTHS, FORMAT, _add_months
from jaxnet.runs.storage import leaves_by_path

RNG = np.random.default_rng(0)
LEFT = RNG.normal(30.0, 8.0, size=(48, 5))  # far from standardized, so the preprocessing shows
RIGHT = RNG.normal(-1.0, 0.5, size=(48, 2, 3))
LABELS = (LEFT[:, 0] - 30.0 + 10.0 * RIGHT[:, 0, 1] > -10.0).astype(np.int32)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def _graph(outputs: Any = None) -> jn.Layer:
    return jn.graph(
        {
            "a": (jn.nn.Dense(4), "left"),
            "flat": (jn.nn.Flatten, "right"),
            "b": (jn.nn.Dense(4), "flat"),
            "join": (jn.nn.FanInConcat(-1), ("a", "b")),
            "out": (jn.nn.Dense(2), "join"),
        },
        inputs=("left", "right"),
        outputs=outputs,
    )


def _raw(kind: str, rows: slice) -> Any:
    """Raw inputs as a user passes them: ``{"left", "right"}`` or ``(left, right)``."""
    left, right = LEFT[rows].astype(np.float32), RIGHT[rows].astype(np.float32)
    return {"left": left, "right": right} if kind == "dict" else (left, right)


@pytest.fixture(scope="module", params=["dict", "tuple"])
def trained(request, tmp_path_factory) -> tuple[str, Path, jn.data.Dataset]:
    """A graph net trained one epoch on dict (or tuple) inputs, exported to its run folder."""
    kind = request.param
    data = jn.data.from_arrays(_raw(kind, slice(None)), LABELS, seed=1)
    run_dir = tmp_path_factory.mktemp(f"export_{kind}") / "run"
    jn.train.fit(
        _graph(),
        data,
        optimizer=optax.adam(0.01),
        loss=jn.losses.softmax_cross_entropy,
        epochs=1,
        batch_size=16,
        run_dir=run_dir,
        progress=False,
    )
    jn.export(run_dir)
    return kind, run_dir, data


def _forward(run_dir: Path) -> jax.export.Exported:
    return jax.export.deserialize((run_dir / "export" / "forward.jax").read_bytes())


def test_forward_takes_the_raw_tree_for_any_batch_size(trained) -> None:
    kind, run_dir, _ = trained
    forward = _forward(run_dir)
    model = jn.train.load(run_dir).model
    (batch, _), (same, *_) = (aval.shape for aval in forward.in_avals)
    assert jax.export.is_symbolic_dim(batch) and str(batch) == "batch" and same == batch
    for rows in (slice(0, 1), slice(3, 40)):
        raw = _raw(kind, rows)
        served = np.asarray(forward.call(raw))
        assert served.shape == (rows.stop - rows.start, 2)
        np.testing.assert_allclose(served, model.predict_outputs(raw), rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(served.argmax(-1), model.predict(raw))


def test_parts_share_one_batch_and_keep_their_structure(trained) -> None:
    kind, run_dir, _ = trained
    forward = _forward(run_dir)
    left, right = LEFT[:4].astype(np.float32), RIGHT[:3].astype(np.float32)
    uneven = {"left": left, "right": right} if kind == "dict" else (left, right)
    with pytest.raises(ValueError, match="Found inconsistency between dimension size"):
        forward.call(uneven)
    if kind == "tuple":  # jax.export checks the tree: a list is not the tuple it was given
        with pytest.raises(ValueError, match="must have the same pytree structure"):
            forward.call([LEFT[:4].astype(np.float32), RIGHT[:4].astype(np.float32)])


_SERVE = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np

    folder = sys.argv[1]
    forward = jax.export.deserialize(open(f"{folder}/forward.jax", "rb").read())
    x = np.load(f"{folder}/x.npz")
    y = forward.call({"left": x["left"], "right": x["right"]})
    np.save(f"{folder}/y.npy", np.asarray(y))
    assert "jaxnet" not in sys.modules, "serving imported jaxnet"
    """
)


def test_a_dict_forward_runs_without_jaxnet(trained, tmp_path: Path) -> None:
    kind, run_dir, _ = trained
    if kind == "tuple":
        return  # one fresh process is enough; the dict is the structure worth proving there
    (tmp_path / "forward.jax").write_bytes((run_dir / "export" / "forward.jax").read_bytes())
    raw = _raw("dict", slice(0, 9))
    np.savez(tmp_path / "x.npz", **raw)
    result = subprocess.run(
        [sys.executable, "-c", _SERVE, str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    expected = jn.train.load(run_dir).model.predict_outputs(raw)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6, atol=1e-6)


def test_safetensors_name_each_part_by_its_path(trained) -> None:
    kind, run_dir, data = trained
    run = jn.train.load(run_dir)
    tensors = safetensors.numpy.load_file(run_dir / "export" / "params.safetensors")
    parts = run.model.preprocessing.parts
    keys = ("left", "right") if kind == "dict" else (0, 1)
    standardization = {
        f"preprocessing/{key}/{name}": getattr(parts[key], name)
        for key in keys
        for name in ("mean", "std")
    }
    weights = jn.train.tree_paths({"params": run.params, "state": run.state})
    assert list(tensors) == sorted([*weights, *standardization])
    for path, leaf in leaves_by_path({"params": run.params}).items():
        np.testing.assert_array_equal(tensors[path], np.asarray(leaf), strict=True)
    for path, value in standardization.items():
        np.testing.assert_array_equal(tensors[path], value, strict=True)
    for key in keys:  # the statistics of each part's training rows
        for name, fitted in (("mean", data.feature_mean[key]), ("std", data.feature_std[key])):
            stored = tensors[f"preprocessing/{key}/{name}"]
            np.testing.assert_allclose(stored, fitted, rtol=1e-6, strict=True)
    assert tensors[f"preprocessing/{keys[1]}/std"].shape == (2, 3)


def test_signature_describes_the_inputs_as_a_tree(trained) -> None:
    kind, run_dir, _ = trained
    signature = json.loads((run_dir / "export" / "signature.json").read_text())
    left = {"shape": [None, 5], "dtype": "float32"}
    right = {"shape": [None, 2, 3], "dtype": "float32"}
    if kind == "dict":
        inputs: Any = {"left": left, "right": right}
        described = "{'left': float32 (batch, 5), 'right': float32 (batch, 2, 3)}"
    else:
        inputs = [left, right]
        described = "(float32 (batch, 5), float32 (batch, 2, 3))"
    created = datetime.datetime.fromisoformat(signature["created"])
    assert abs(datetime.datetime.now(datetime.UTC) - created) < datetime.timedelta(hours=1)
    assert signature == {
        "format": FORMAT,
        "task": "classification",
        "inputs": inputs,
        "output": {"shape": [None, 2], "dtype": "float32", "kind": "logits"},
        "class_names": None,  # from_arrays names no classes
        "target_names": None,
        "step": jn.train.load(run_dir).step,
        "platforms": ["cpu"],
        "created": signature["created"],
        "readable_until": _add_months(created.date(), COMPATIBILITY_MONTHS).isoformat(),
        "compatibility": COMPATIBILITY,
        "jaxnet_version": jn.__version__,
        "jax_version": jax.__version__,
        "jaxlib_version": signature["jaxlib_version"],
        "files": {"forward": "forward.jax", "params": "params.safetensors"},
        "usage": (
            "pip install jax flatbuffers; "
            "import jax; forward = jax.jit(jax.export.deserialize(open('forward.jax', "
            f"'rb').read()).call); y = forward(x)  # x: raw inputs {described}, the same batch "
            "for every part; y: logits"
        ),
    }
    assert FORMAT == "jaxnet.export/1"


def test_the_cli_exports_a_tree_run(trained, capsys, tmp_path: Path) -> None:
    kind, run_dir, _ = trained
    assert cli.main(["export", str(run_dir), "--out", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"exported {run_dir} for cpu to {tmp_path / 'cli'}/"
    )
    signature = json.loads((tmp_path / "cli" / "signature.json").read_text())
    assert "inputs" in signature and "input" not in signature
    raw = _raw(kind, slice(0, 6))
    again = jax.export.deserialize((tmp_path / "cli" / "forward.jax").read_bytes())
    np.testing.assert_array_equal(
        np.asarray(again.call(raw)), np.asarray(_forward(run_dir).call(raw))
    )


def _ids_model() -> jn.train.Model:
    """Token ids beside standardized floats; straight from init."""
    net = jn.graph(
        {
            "embed": (jn.nn.Embedding(10, 3), "ids"),
            "flat": (jn.nn.Flatten, "embed"),
            "join": (jn.nn.FanInConcat(-1), ("flat", "left")),
            "out": (jn.nn.Dense(2), "join"),
        },
        inputs=("ids", "left"),
    )
    _, params, state = net.init(jax.random.key(0), {"ids": (None, 7), "left": (None, 5)})
    mean, std = np.full(5, 30.0, np.float32), np.full(5, 8.0, np.float32)
    parts = {
        "ids": jn.data.Preprocessing((7,), "int32"),
        "left": jn.data.Preprocessing((5,), "float32", mean, std),
    }
    return jn.train.Model(net, params, state, TreePreprocessing(parts), "logits")


def test_integer_id_parts_keep_int32(tmp_path: Path) -> None:
    model = _ids_model()
    files = jn.export(model, tmp_path / "ids")
    forward = jax.export.deserialize(files.forward.read_bytes())
    dtypes = jax.tree.unflatten(forward.in_tree, [str(a.dtype) for a in forward.in_avals])
    assert dtypes == (({"ids": "int32", "left": "float32"},), {})
    raw = {"ids": RNG.integers(0, 10, (11, 7), np.int32), "left": LEFT[:11].astype(np.float32)}
    np.testing.assert_allclose(
        np.asarray(forward.call(raw)), model.predict_outputs(raw), rtol=1e-6, atol=1e-6
    )
    signature = json.loads(files.signature.read_text())
    assert signature["inputs"] == {
        "ids": {"shape": [None, 7], "dtype": "int32"},
        "left": {"shape": [None, 5], "dtype": "float32"},
    }
    assert "{'ids': int32 (batch, 7), 'left': float32 (batch, 5)}" in signature["usage"]
    tensors = safetensors.numpy.load_file(files.params)
    assert [name for name in tensors if name.startswith("preprocessing/")] == [
        "preprocessing/left/mean",
        "preprocessing/left/std",
    ]  # ids are never standardized: nothing to store for them
    np.testing.assert_array_equal(tensors["preprocessing/left/mean"], np.full(5, 30.0, np.float32))


def test_dict_keys_in_any_order_reach_the_net_by_name(tmp_path: Path) -> None:
    """jax hands dicts back with sorted keys; the forward pass restores the model's order, so
    a preprocessing whose keys are not sorted exports (compared with the net by hand)."""
    net = _graph()
    _, params, state = net.init(jax.random.key(1), {"right": (None, 2, 3), "left": (None, 5)})
    mean = {"right": np.full((2, 3), -1.0, np.float32), "left": np.full(5, 30.0, np.float32)}
    std = {"right": np.full((2, 3), 0.5, np.float32), "left": np.full(5, 8.0, np.float32)}
    parts = {k: jn.data.Preprocessing(mean[k].shape, "float32", mean[k], std[k]) for k in mean}
    model = jn.train.Model(net, params, state, TreePreprocessing(parts), "logits")
    files = jn.export(model, tmp_path)
    forward = jax.export.deserialize(files.forward.read_bytes())
    assert list(json.loads(files.signature.read_text())["inputs"]) == ["right", "left"]
    raw = _raw("dict", slice(0, 5))
    by_hand = {k: (raw[k] - mean[k]) / std[k] for k in raw}
    np.testing.assert_allclose(
        np.asarray(forward.call(raw)), net.apply(params, state, by_hand)[0], rtol=1e-5, atol=1e-6
    )


def test_a_net_of_several_outputs_is_refused(tmp_path: Path) -> None:
    net = _graph(outputs=("a", "out"))
    _, params, state = net.init(jax.random.key(0), {"left": (None, 5), "right": (None, 2, 3)})
    parts = {"left": jn.data.Preprocessing((5,)), "right": jn.data.Preprocessing((2, 3))}
    model = jn.train.Model(net, params, state, TreePreprocessing(parts))
    with pytest.raises(
        ValueError,
        match=exactly(
            "export: the net returns (array, array), not one array; export takes nets with a "
            "single output"
        ),
    ):
        jn.export(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_parts_whose_names_collide_are_refused(tmp_path: Path) -> None:
    standardized = jn.data.Preprocessing((2,), "float32", np.zeros(2), np.ones(2))
    parts = {"a/b": standardized, "a": {"b": standardized}}
    net = jn.nn.Identity
    _, params, state = net.init(jax.random.key(0), (None, 2))
    model = jn.train.Model(net, params, state, TreePreprocessing(parts))
    with pytest.raises(
        ValueError,
        match=exactly(
            "export: two input parts are both named 'preprocessing/a/b' in params.safetensors; "
            "rename a dict key ('/' joins the keys of nested parts)"
        ),
    ):
        jn.export(model, tmp_path / "out")
    assert not (tmp_path / "out").exists()
