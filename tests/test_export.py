"""jn.export: a forward pass that runs without jaxnet, weights as safetensors, a signature."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest
import safetensors
import safetensors.numpy

import jaxnet as jn
from jaxnet.export import COMPATIBILITY_MONTHS, FORMAT, _add_months

ROOT = Path(__file__).resolve().parents[1]

SIGNATURE_KEYS = {
    "format",
    "task",
    "input",
    "output",
    "class_names",
    "target_names",
    "step",
    "platforms",
    "created",
    "readable_until",
    "compatibility",
    "jaxnet_version",
    "jax_version",
    "jaxlib_version",
    "files",
    "usage",
}


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, jn.data.Dataset]:
    """One trained run folder (one epoch on iris), exported to its default folder."""
    data = jn.data.load("iris")
    run_dir = tmp_path_factory.mktemp("export") / "run"
    net = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
    jn.train.fit(
        net,
        data,
        optimizer=optax.adam(0.01),
        loss=jn.losses.softmax_cross_entropy,
        epochs=1,
        batch_size=32,
        run_dir=run_dir,
        progress=False,
    )
    jn.export(run_dir)
    return run_dir, data


def _raw_inputs(data: jn.data.Dataset, n: int) -> np.ndarray:
    """``n`` raw (unstandardized) examples, as a user would pass them."""
    x = np.concatenate([data.x_test, data.x_train])[:n]
    return (x * data.feature_std + data.feature_mean).astype(np.float32)


def _token_model() -> jn.train.Model:
    """A net on integer ids, straight from init: no training needed to export it."""
    net = jn.serial(jn.nn.Embedding(10, 4), jn.nn.Flatten, jn.nn.Dense(3))
    _, params, state = net.init(jax.random.key(0), (None, 5))
    return jn.train.Model(net, params, state, jn.data.Preprocessing((5,), "int32"), "logits")


_SERVE = textwrap.dedent(
    """
    import sys
    import jax
    import numpy as np

    folder = sys.argv[1]
    forward = jax.export.deserialize(open(f"{folder}/forward.jax", "rb").read())
    for n in (1, 37):
        y = forward.call(np.load(f"{folder}/x{n}.npy"))
        np.save(f"{folder}/y{n}.npy", np.asarray(y))
    assert "jaxnet" not in sys.modules, "serving imported jaxnet"
    """
)


SERVING_PACKAGES = ("jax", "jaxlib", "numpy", "ml_dtypes", "opt_einsum", "scipy", "flatbuffers")
"""What docs/saving.md says serving needs: jax (with what it imports) and flatbuffers."""


def _serve_with_only(packages: tuple[str, ...], folder: Path) -> subprocess.CompletedProcess:
    """Run ``_SERVE`` in a Python that sees ``packages`` and nothing else: no site-packages
    (``-S``), an import path that links just those packages."""
    site = folder / "site"
    site.mkdir(exist_ok=True)
    for name in packages:
        source = Path(importlib.import_module(name).__file__).parent
        (site / source.name).symlink_to(source)
    env = {"PYTHONPATH": str(site), "PATH": os.environ.get("PATH", "")}
    return subprocess.run(
        [sys.executable, "-S", "-c", _SERVE, str(folder)], capture_output=True, text=True, env=env
    )


def test_forward_runs_without_jaxnet_for_any_batch_size(iris, tmp_path: Path) -> None:
    run_dir, data = iris
    (tmp_path / "forward.jax").write_bytes((run_dir / "export" / "forward.jax").read_bytes())
    for n in (1, 37):
        np.save(tmp_path / f"x{n}.npy", _raw_inputs(data, n))
    result = _serve_with_only(SERVING_PACKAGES, tmp_path)
    assert result.returncode == 0, result.stderr
    model = jn.train.load(run_dir).model
    for n in (1, 37):
        expected = model.predict_outputs(_raw_inputs(data, n))
        served = np.load(tmp_path / f"y{n}.npy")
        assert served.shape == (n, 3)
        np.testing.assert_allclose(served, expected, rtol=1e-6, atol=1e-6)


def test_serving_needs_flatbuffers_as_the_docs_say(iris, tmp_path: Path) -> None:
    """Issue 25, item 8: a bare ``pip install jax`` lacks flatbuffers, which deserializing
    needs; docs/saving.md and signature.json's usage line name it."""
    run_dir, data = iris
    (tmp_path / "forward.jax").write_bytes((run_dir / "export" / "forward.jax").read_bytes())
    np.save(tmp_path / "x1.npy", _raw_inputs(data, 1))
    without = tuple(name for name in SERVING_PACKAGES if name != "flatbuffers")
    result = _serve_with_only(without, tmp_path)
    assert result.returncode != 0 and "flatbuffers" in result.stderr.splitlines()[-1]
    signature = json.loads((run_dir / "export" / "signature.json").read_text())
    assert signature["usage"].startswith("pip install jax flatbuffers; import jax;")
    assert "`pip install jax flatbuffers`" in (ROOT / "docs" / "saving.md").read_text()


def test_safetensors_hold_params_state_and_preprocessing_by_path(iris) -> None:
    run_dir, data = iris
    run = jn.train.load(run_dir)
    file = run_dir / "export" / "params.safetensors"
    tensors = safetensors.numpy.load_file(file)
    tree = {
        "params": run.params,
        "state": run.state,
        "preprocessing": {"mean": data.feature_mean, "std": data.feature_std},
    }
    assert list(tensors) == sorted(jn.train.tree_paths(tree))
    assert "params/dense_0/w" in tensors and "preprocessing/std" in tensors
    for path, leaf in zip(jn.train.tree_paths(tree), jax.tree.leaves(tree), strict=True):
        np.testing.assert_array_equal(tensors[path], np.asarray(leaf), strict=True)
    with safetensors.safe_open(file, "np") as f:
        assert f.metadata() == {"format": FORMAT, "jaxnet": jn.__version__}


def test_signature_describes_inputs_outputs_and_compatibility(iris) -> None:
    run_dir, _ = iris
    signature = json.loads((run_dir / "export" / "signature.json").read_text())
    assert set(signature) == SIGNATURE_KEYS
    assert signature["format"] == "jaxnet.export/1"
    assert signature["input"] == {"shape": [None, 4], "dtype": "float32"}
    assert signature["output"] == {"shape": [None, 3], "dtype": "float32", "kind": "logits"}
    assert signature["task"] == "classification"
    assert (
        signature["class_names"]
        == signature["target_names"]
        == ["setosa", "versicolor", "virginica"]
    )
    assert signature["step"] == jn.train.load(run_dir).step
    assert signature["platforms"] == ["cpu"]
    assert signature["files"] == {"forward": "forward.jax", "params": "params.safetensors"}
    assert (signature["jaxnet_version"], signature["jax_version"]) == (
        jn.__version__,
        jax.__version__,
    )
    created = datetime.datetime.fromisoformat(signature["created"])
    assert created.tzinfo is not None
    assert abs(datetime.datetime.now(datetime.UTC) - created) < datetime.timedelta(hours=1)
    until = datetime.date.fromisoformat(signature["readable_until"])
    assert until == _add_months(created.date(), COMPATIBILITY_MONTHS)
    assert "6 months" in signature["compatibility"]
    assert "jax.export.deserialize(open('forward.jax', 'rb').read())" in signature["usage"]
    assert "(batch, 4)" in signature["usage"]


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (datetime.date(2026, 12, 2), datetime.date(2027, 6, 2)),
        (datetime.date(2026, 8, 31), datetime.date(2027, 2, 28)),
        (datetime.date(2027, 8, 31), datetime.date(2028, 2, 29)),
        (datetime.date(2026, 6, 30), datetime.date(2026, 12, 30)),
    ],
)
def test_readable_until_moves_calendar_months(day, expected) -> None:
    assert _add_months(day, 6) == expected


def test_cross_platform_artifact_runs_on_cpu(iris, tmp_path: Path) -> None:
    run_dir, data = iris
    run = jn.train.load(run_dir)
    files = jn.export(run, tmp_path / "multi", platforms=("cpu", "cuda"))
    forward = jax.export.deserialize(files.forward.read_bytes())
    assert forward.platforms == ("cpu", "cuda")
    x = _raw_inputs(data, 5)
    np.testing.assert_allclose(forward.call(x), run.predict_outputs(x), rtol=1e-6, atol=1e-6)
    assert json.loads(files.signature.read_text())["platforms"] == ["cpu", "cuda"]


def test_token_id_model(tmp_path: Path) -> None:
    model = _token_model()
    files = jn.export(model, tmp_path / "tokens")
    forward = jax.export.deserialize(files.forward.read_bytes())
    assert str(forward.in_avals[0].dtype) == "int32"
    ids = np.random.default_rng(0).integers(0, 10, (37, 5)).astype(np.int32)
    np.testing.assert_array_equal(np.asarray(forward.call(ids)), model.predict_outputs(ids))
    signature = json.loads(files.signature.read_text())
    assert signature["input"] == {"shape": [None, 5], "dtype": "int32"}
    assert signature["task"] is signature["step"] is signature["class_names"] is None
    tensors = safetensors.numpy.load_file(files.params)
    assert sorted(tensors) == [
        "params/dense_0/b",
        "params/dense_0/w",
        "params/embedding_0/embedding",
    ]
    np.testing.assert_array_equal(
        tensors["params/embedding_0/embedding"], model.params["embedding_0"]["embedding"]
    )


def test_bfloat16_params_are_stored_as_bf16(tmp_path: Path) -> None:
    net = jn.nn.Dense(2)
    _, params, state = net.init(jax.random.key(0), (None, 3))
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), params)
    model = jn.train.Model(net, params, state, jn.data.Preprocessing((3,)), "values")
    files = jn.export(model, tmp_path)
    header = dict(safetensors.deserialize(files.params.read_bytes()))["params/b"]
    assert (header["dtype"], header["shape"]) == ("BF16", [2])
    stored = np.frombuffer(header["data"], ml_dtypes.bfloat16)
    np.testing.assert_array_equal(stored, np.asarray(params["b"]))


def _raises(error: type[Exception], message: str) -> AbstractContextManager[Any]:
    """``pytest.raises`` for exactly ``message``."""
    return pytest.raises(error, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize(
    ("keywords", "error", "message"),
    [
        (
            {"platforms": ("cpu", "gpu")},
            ValueError,
            "export: unknown platform 'gpu'; the platforms are cpu, cuda, rocm, tpu",
        ),
        (
            {"platforms": "cuda"},
            TypeError,
            "export: platforms must be a sequence of names, got the string 'cuda'; write ('cuda',)",
        ),
        (
            {"platforms": ("cpu", "cpu")},
            ValueError,
            "export: platforms must name each platform once, got ('cpu', 'cpu')",
        ),
        (
            {"which": "best"},
            ValueError,
            "export: step and which choose a checkpoint of a run folder only",
        ),
    ],
)
def test_bad_arguments_are_named(keywords, error, message, tmp_path: Path) -> None:
    with _raises(error, message):
        jn.export(_token_model(), tmp_path / "out", **keywords)
    assert not (tmp_path / "out").exists()


def test_a_model_needs_out_dir() -> None:
    with _raises(ValueError, "export: give out_dir to export a Model (only a run folder has one)"):
        jn.export(_token_model())


def test_leaves_safetensors_cannot_store_are_refused(tmp_path: Path) -> None:
    model = _token_model()
    keyed = jn.train.Model(model.net, model.params, {"rng": jax.random.key(0)}, model.preprocessing)
    with _raises(TypeError, "export: state/rng has dtype key<fry>, which safetensors cannot store"):
        jn.export(keyed, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing is written before everything is computed


def test_folder_errors_name_the_path(iris, tmp_path: Path) -> None:
    run_dir, _ = iris
    file = tmp_path / "taken"
    file.write_text("")
    with _raises(NotADirectoryError, f"export: out_dir '{file}' is a file, not a folder"):
        jn.export(run_dir, file)
    missing = tmp_path / "no-such-run"
    with _raises(FileNotFoundError, f"run folder '{missing}' does not exist"):
        jn.export(missing)
