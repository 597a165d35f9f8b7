"""The ``jaxnet`` command, in-process (fast) and through a subprocess (the real console script)."""

import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import jaxnet
from jaxnet import cli, recipes, train

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, whatever is installed


def _run(*args, cwd):
    command = [sys.executable, "-m", "jaxnet.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=_env(), timeout=300)


def test_train_and_resume_through_subprocess(tmp_path, default_optimizations):
    """The real console script, compiled with XLA's defaults (evaluate: test_cli_model.py)."""
    done = _run("train", "xor", "--epochs", "2", "--out", "run", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "run folder: run" in done.stdout
    device = jax.devices()[0]
    assert f"devices: 1 × {device.device_kind} ({device.platform})" in done.stdout
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "checkpoints",
        "config.json",
        "curves.png",
        "metrics.jsonl",
        "model.json",
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "xor" and config["epochs"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    resumed = _run("train", "--resume", "run", "--epochs", "3", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "resuming run from epoch 2"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3


def test_bad_flag_is_one_line_and_exit_2(tmp_path):
    done = _run("train", "--lr", "-1", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "jaxnet: error: lr must be a finite number > 0, got -1.0"
    ]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--width", "0"], "jaxnet: error: width must be an int >= 1, got 0"),
        (["train", "--depth", "-1"], "jaxnet: error: depth must be an int >= 0, got -1"),
        (["train", "--epochs", "0"], "jaxnet: error: epochs must be an int >= 1, got 0"),
        (["train", "--batch-size", "0"], "jaxnet: error: batch_size must be an int >= 1, got 0"),
        (["train", "--lr", "nan"], "jaxnet: error: lr must be a finite number > 0, got nan"),
        (["train", "--lr", "fast"], "jaxnet: error: argument --lr: invalid float value: 'fast'"),
        (
            ["train", "digits-mpl"],
            "jaxnet: error: unknown recipe 'digits-mpl'; did you mean 'digits-mlp'?",
        ),
        (
            ["train", "--activation", "relu6"],
            "jaxnet: error: unknown activation 'relu6' (known: elu, gelu",
        ),
        (
            ["train", "--optimizer", "lbfgs"],
            "jaxnet: error: unknown optimizer 'lbfgs' (known: adam, adamw, sgd, momentum, rmsprop)",
        ),
        (["train", "--resume", "nowhere"], "jaxnet: error: run folder 'nowhere' does not exist"),
        (["evaluate", "nowhere"], "jaxnet: error: run folder 'nowhere' does not exist"),
        (["summary", "nope"], "jaxnet: error: unknown recipe 'nope'"),
        (["train", "--bogus"], "jaxnet: error: unrecognized arguments: --bogus"),
        ([], "jaxnet: error: the following arguments are required: command"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as caught:
        raise SystemExit(cli.main(args))
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err


def test_nonfinite_run_exits_1(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [
        "train",
        "temperature",
        "--lr",
        "1e8",
        "--optimizer",
        "sgd",
        "--epochs",
        "2",
        "--out",
        "hot",
        "--no-progress",
    ]
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("jaxnet: non-finite loss or parameters at step")


def test_recipes_and_summary(capsys):
    assert cli.main(["recipes"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [
        "digits-mlp",
        "xor",
        "temperature",
        "iris",
        "breast-cancer",
        "digits-cnn",
        "digits-unet",
        "temperature-lstm",
        "reverse-digits",
    ]
    assert cli.main(["summary", "digits-mlp"]) == 0
    table = capsys.readouterr().out
    assert "64×64 · 64×128 → 64×128" in table
    assert table.splitlines()[-1].split()[:2] == [
        "total",
        f"{64 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10:,}",
    ]
    assert cli.main(["summary"]) == 0  # the default recipe, as `jaxnet train` trains it
    assert capsys.readouterr().out == table


def test_train_digits_unet_writes_a_run_folder_that_reloads_without_code(tmp_path, capsys):
    run = tmp_path / "unet"
    args = ["train", "digits-unet", "--epochs", "1", "--width", "4", "--no-progress"]
    status, out, err = _main([*args, "--out", str(run)], capsys)
    assert (status, err) == (0, [])
    assert out.startswith("jaxnet train digits-unet: Dataset(name='digits'")
    model = json.loads((run / "model.json").read_text())["net"]["net"]
    assert model["type"] == "graph"
    assert model["arguments"]["nodes"]["dict"]["join_0"][1] == ["up_0", "down_0"]
    # the trained params, restored through the recipe (no model.json) ...
    job = recipes.build(json.loads((run / "config.json").read_text()))
    trained = train.RunFolder(run).checkpointer().restore(job.initial_state(), 1)
    x = job.data.x_test
    logits = job.net.apply(trained.params, trained.state, jax.numpy.asarray(x))[0]
    # ... give what load() predicts from raw images, preprocessed by model.json
    loaded = train.load(run)
    raw = x * job.data.feature_std + job.data.feature_mean
    np.testing.assert_allclose(
        loaded.model.predict_proba(raw), jax.nn.softmax(logits), rtol=1e-5, atol=1e-6
    )
    labels = loaded.model.predict(raw)
    np.testing.assert_array_equal(labels, np.argmax(logits, axis=-1))
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.mean(labels == job.data.y_test) == pytest.approx(last["test_accuracy"], abs=1e-6)
    np.save(tmp_path / "raw.npy", raw)
    status, out, _ = _main(["predict", str(run), str(tmp_path / "raw.npy")], capsys)
    assert status == 0 and [int(v) for v in out.splitlines()[1:]] == labels.tolist()
    status, out, _ = _main(["export", str(run), "--out", str(tmp_path / "export")], capsys)
    assert status == 0
    forward = jax.export.deserialize((tmp_path / "export" / "forward.jax").read_bytes())
    np.testing.assert_allclose(
        forward.call(raw[:7].astype(np.float32)), loaded.predict_outputs(raw[:7]), rtol=1e-5
    )
    status, out, err = _main(
        ["train", "--resume", str(run), "--epochs", "2", "--no-progress"], capsys
    )
    assert (status, err) == (0, []) and out.startswith(f"resuming {run} from epoch 1")
    assert train.load(run).step == 2


def _main(args, capsys):
    """``cli.main(args)`` in-process: (exit status, stdout, stderr lines)."""
    status = cli.main(args)
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def test_version(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["--version"])
    assert caught.value.code == 0
    assert capsys.readouterr().out == f"jaxnet {jaxnet.__version__}\n"


def test_help_lists_the_commands_without_importing_jax():
    done = _run("--help", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    for command in ("train", "sweep", "recipes", "summary", "evaluate", "predict", "export"):
        assert f"    {command} " in done.stdout
    heavy = "{'jax', 'jaxlib', 'orbax', 'optax', 'matplotlib'}"
    code = f"import jaxnet.cli, sys; print(sorted(m for m in sys.modules if m.split('.')[0] in {heavy}))"
    imported = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert imported.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder of ``xor`` trained for 2 epochs (tests only read it)."""
    run = tmp_path_factory.mktemp("trained") / "run"
    assert cli.main(["train", "xor", "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    return run


def test_resume_with_nothing_left_to_train_says_so_and_exits_0(trained, capsys):
    metrics = (trained / "metrics.jsonl").read_text()
    status, out, err = _main(["train", "xor", "--resume", str(trained)], capsys)  # its own recipe
    assert (status, err) == (0, [])
    assert out == (
        f"{trained} has trained 2 of 2 epochs; nothing to train "
        "(pass --epochs N with N > 2 to train more)\n"
    )
    status, out, _ = _main(["train", "--resume", str(trained), "--epochs", "1"], capsys)
    assert status == 0
    assert out == (
        f"{trained} has trained 2 epochs, not 1; nothing to train "
        "(pass --epochs N with N > 2 to train more)\n"
    )
    assert (trained / "metrics.jsonl").read_text() == metrics


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["iris"], "cannot change the recipe from 'xor' to 'iris'"),
        (["--lr", "0.5"], "cannot change --lr"),
        (["--batch-size", "8"], "cannot change --batch-size"),
        (["--out", "elsewhere"], "cannot change --out"),
    ],
)
def test_resume_refuses_changed_config(trained, flags, message, capsys):
    status, out, err = _main(["train", *flags, "--resume", str(trained)], capsys)
    assert (status, out) == (2, "")
    assert err == [f"jaxnet: error: --resume keeps the run's config; {message}"]


def test_resume_before_the_first_checkpoint_starts_over_and_needs_a_recipe(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()  # a run killed before its first checkpoint
    config = jaxnet.recipes.make_config("xor", epochs=2)
    (tmp_path / "empty" / "config.json").write_text(json.dumps(config))
    status, out, err = _main(["train", "--resume", "empty", "--no-progress"], capsys)
    assert (status, err) == (0, [])
    assert "resuming empty from epoch 0" in out
    assert len((tmp_path / "empty" / "metrics.jsonl").read_text().splitlines()) == 2
    (tmp_path / "hand").mkdir()
    (tmp_path / "hand" / "config.json").write_text('{"epochs": 2}')
    status, out, err = _main(["train", "--resume", "hand"], capsys)
    assert (status, out) == (2, "")
    assert err == [
        "jaxnet: error: 'hand' was written by fit() with a hand-built net, not a recipe; "
        "continue it from Python with fit(..., resume=True)"
    ]


@pytest.mark.parametrize("holds", ["config.json", "checkpoints/3/manifest.json"])
def test_out_that_holds_a_run_is_refused_first(holds, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "run" / holds).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "run" / holds).write_text("{}")
    before = sorted(tmp_path.rglob("*"))
    status, out, err = _main(["train", "xor", "--out", "run"], capsys)
    assert (status, out) == (2, "")
    assert err == [
        "jaxnet: error: --out run already holds a run; "
        "continue it with --resume run or choose another --out"
    ]
    assert sorted(tmp_path.rglob("*")) == before


def _device_count_line():
    devices = jax.devices()
    plural = "s" if len(devices) > 1 else ""
    return f"{len(devices)} device{plural} available ({devices[0].platform})"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--batch-size", "5000"],
            "--batch-size 5000 is larger than the 1257 training examples of digits",
        ),
        (["--devices", "0"], "--devices must be an int >= 1, got 0"),
        (["--devices", "10000"], f"--devices 10000 is more than the {_device_count_line()}"),
        (["--checkpoint-every", "0"], "--checkpoint-every must be an int >= 1, got 0"),
    ],
)
def test_checked_flags_fail_before_anything_is_printed_or_written(
    flags, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    status, out, err = _main(["train", *flags], capsys)
    assert (status, out, err) == (2, "", [f"jaxnet: error: {message}"])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("out", "line"),
    [
        ("somefile/run", "jaxnet: error: somefile/run: Not a directory"),
        ("somefile", "jaxnet: error: somefile: Not a directory"),
    ],
)
def test_out_the_os_refuses_is_one_line_and_exit_74(out, line, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "somefile").write_text("not a folder\n")
    status, stdout, err = _main(["train", "xor", "--out", out, "--no-progress"], capsys)
    assert (status, stdout, err) == (cli.IO_ERROR, "", [line])
    assert [p.name for p in tmp_path.iterdir()] == ["somefile"]
    assert (tmp_path / "somefile").read_text() == "not a folder\n"


@pytest.mark.parametrize(
    ("error", "status", "line"),
    [
        (
            ImportError("the tensorboard logger needs the tensorboard extra"),
            2,
            "jaxnet: error: the tensorboard logger needs the tensorboard extra",
        ),
        (
            FileNotFoundError(errno.ENOENT, "No such file or directory", "data/x.npz"),
            74,
            "jaxnet: error: data/x.npz: No such file or directory",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "a", None, "b"),
            74,
            "jaxnet: error: a -> b: Permission denied",
        ),
        (OSError(errno.EFBIG, "File too large"), 74, "jaxnet: error: File too large"),
    ],
)
def test_import_and_os_errors_are_one_line(error, status, line, capsys, monkeypatch):
    def fail(config):
        raise error

    monkeypatch.setattr(recipes, "build", fail)
    assert _main(["summary", "xor"], capsys) == (status, "", [line])


_LIMITED = """
import resource, runpy, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write (EFBIG), not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[1]),) * 2)
sys.argv = ["jaxnet", *sys.argv[2:]]
runpy.run_module("jaxnet.cli", run_name="__main__")
"""


def _run_with_file_size_limit(limit, *args, cwd):
    """The CLI in a child whose files cannot grow past ``limit`` bytes: writes fail with EFBIG,
    as on a full disk (as root, permissions would not stop a write). The child sets the limit
    itself: ``preexec_fn`` would fork this process, whose JAX threads make fork unsafe.

    The child keeps no compilation cache: on a full disk its writes would fail too, each with a
    warning line of its own, and these tests are about the run folder."""
    command = [sys.executable, "-c", _LIMITED, str(limit), *args, "--no-compile-cache"]
    env = {k: v for k, v in _env().items() if not k.startswith("JAX_COMPILATION_CACHE")}
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _assert_one_line_exit_74_and_complete_checkpoints(done, run):
    assert done.returncode == cli.IO_ERROR, done.stderr
    [line] = done.stderr.splitlines()
    assert re.fullmatch(r"jaxnet: error: (\S+/)?run(/\S+)?: File too large", line), line
    checkpoints = train.RunFolder(run).checkpointer()
    folders = sorted(p.name for p in checkpoints.directory.iterdir())
    assert folders == [str(step) for step in checkpoints.steps()]
    for step in checkpoints.steps():
        train.load(run, step=step)  # verifies the manifest and every file


def test_full_disk_at_the_plot_is_one_line_and_exit_74(tmp_path):
    # 16 KiB: config.json, metrics.jsonl and the checkpoints fit; the ~40 KB curves.png does not
    args = ("train", "xor", "--epochs", "2", "--out", "run", "--no-progress")
    done = _run_with_file_size_limit(16384, *args, cwd=tmp_path)
    _assert_one_line_exit_74_and_complete_checkpoints(done, tmp_path / "run")


def test_full_disk_in_a_checkpoint_is_one_line_and_exit_74(tmp_path):
    # 2000 bytes: config.json, model.json (~1.2 KB) and metrics.jsonl fit; orbax's _METADATA
    # file (~4 KB) does not
    args = ("train", "xor", "--epochs", "2", "--out", "run", "--no-progress")
    done = _run_with_file_size_limit(2000, *args, cwd=tmp_path)
    assert (tmp_path / "run" / "model.json").is_file()
    _assert_one_line_exit_74_and_complete_checkpoints(done, tmp_path / "run")


def test_activation_help_and_docs_name_exactly_the_recipes_activations(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    listed = help_text.split("--activation ACTIVATION ")[1].split(" --optimizer")[0]
    names = re.sub(r" \([^)]*\)", "", listed).replace(" or ", ", ").split(", ")
    assert sorted(names) == sorted(recipes.ACTIVATIONS)
    row = next(
        line
        for line in (ROOT / "docs" / "cli.md").read_text().splitlines()
        if line.startswith("| `--activation NAME` |")
    )
    assert sorted(re.findall(r"`([a-z_]+)`", row)) == sorted(recipes.ACTIVATIONS)


def test_recipe_table_of_the_docs_is_jaxnet_recipes_markdown(capsys):
    assert cli.main(["recipes", "--markdown"]) == 0
    table = capsys.readouterr().out
    doc = (ROOT / "docs" / "cli.md").read_text()
    assert table in doc, "docs/cli.md: paste the output of `jaxnet recipes --markdown`"
    named = re.findall(r"^\| `([a-z][\w-]*)` \|", doc, flags=re.MULTILINE)
    assert sorted(named) == sorted(jaxnet.recipes.names())
    assert "jaxnet recipes --markdown" in doc


def test_checkpoint_every_and_tensorboard(tmp_path, capsys, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    monkeypatch.chdir(tmp_path)
    args = ["train", "xor", "--epochs", "4", "--checkpoint-every", "3", "--tensorboard"]
    status, _, err = _main([*args, "--out", "run", "--no-progress"], capsys)
    assert (status, err) == (0, [])
    # epoch 3 by the cadence, epoch 4 as the last one; the best may be either
    assert jaxnet.train.RunFolder("run").checkpointer().steps() == [3, 4]
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    rows = [
        json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    logged = events.Scalars("train/loss")
    assert [e.step for e in logged] == [row["step"] for row in rows]
    np.testing.assert_allclose(
        [e.value for e in logged], [row["train_loss"] for row in rows], rtol=1e-6
    )


def test_resume_over_a_damaged_checkpoint_warns_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            [
                "train",
                "xor",
                "--epochs",
                "3",
                "--checkpoint-every",
                "1",
                "--out",
                "run",
                "--no-progress",
            ]
        )
        == 0
    )
    capsys.readouterr()
    (tmp_path / "run" / "checkpoints" / "3" / "manifest.json").unlink()
    status, out, err = _main(["train", "--resume", "run", "--epochs", "3", "--no-progress"], capsys)
    assert status == 0
    assert "resuming run from epoch 2" in out
    folder = (tmp_path / "run" / "checkpoints" / "3").absolute()
    [aside] = (tmp_path / "run" / "checkpoints").glob("damaged-3-*")
    assert err == [
        f"jaxnet: warning: fit: resuming from epoch 2, passing over checkpoint {folder} has no manifest.json: it is damaged or was not written by jaxnet (moved to {aside.name})"
    ]
    assert jaxnet.train.RunFolder("run").checkpointer().steps() == [1, 2, 3]


def test_full_disk_at_model_json_is_one_line_and_exit_74(tmp_path):
    # 600 bytes: config.json (~240 B) fits; model.json (~1.2 KB) does not
    args = ("train", "xor", "--epochs", "1", "--out", "run", "--no-progress")
    done = _run_with_file_size_limit(600, *args, cwd=tmp_path)
    assert done.returncode == cli.IO_ERROR, done.stderr
    assert done.stderr.splitlines() == ["jaxnet: error: run/model.json: File too large"]
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]
