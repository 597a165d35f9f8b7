"""The ``jaxnet`` command, in-process (fast) and through a subprocess (the real console script)."""

import json
import subprocess
import sys

import jax
import pytest

from jaxnet import cli


def _run(*args, cwd):
    command = [sys.executable, "-m", "jaxnet.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)


def test_train_evaluate_and_resume_through_subprocess(tmp_path):
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
    ]
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "xor" and config["epochs"] == 2
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    evaluated = _run("evaluate", "run", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "test_accuracy" in evaluated.stdout
    resumed = _run("train", "--resume", "run", "--epochs", "3", "--no-progress", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
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
            "jaxnet: error: unknown optimizer 'lbfgs' (known: adam, sgd, momentum)",
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


def test_resume_refuses_changed_hyperparameters(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "xor", "--epochs", "1", "--out", "run", "--no-progress"]) == 0
    assert cli.main(["train", "--resume", "run", "--lr", "0.5"]) == 2
    assert "--resume keeps the run's config; cannot change --lr" in capsys.readouterr().err


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
