"""Every experiment runs with ``--quick`` and finds what the lecture claims.

Each experiment's ``main(argv)`` returns its measured findings; the figures go to a temporary
folder. The runs are short (tiny epochs); most of their time is compiling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments import (
    activations,
    backprop_by_hand,
    digits,
    forward_pass,
    hyperparameters,
    linear_collapse,
    nonlinear_world,
    parameters,
    sequences,
    softmax,
    training,
)


def _run(module, tmp_path: Path) -> dict:
    findings = module.main(["--quick", "--out", str(tmp_path)])
    figure = findings["figure"]
    assert figure.parent == tmp_path and figure.suffix == ".png"
    assert 0 < figure.stat().st_size <= 100_000
    return findings


def test_softmax_worked_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = _run(softmax, tmp_path)
    assert found["rounded"] == [0.1, 0.2, 0.7]
    assert found["sum"] == pytest.approx(1.0, abs=1e-6)
    assert "= [0.10, 0.20, 0.70]" in capsys.readouterr().out


def test_activations_derivatives_and_ranges(tmp_path: Path) -> None:
    found = _run(activations, tmp_path)
    assert max(found["max_grad_error"].values()) < 1e-6
    extremes = found["extremes"]
    assert list(extremes) == ["sigmoid", "tanh", "relu", "softmax"]
    assert 0 < extremes["sigmoid"][0] < extremes["sigmoid"][1] < 1
    assert -1 <= extremes["tanh"][0] < extremes["tanh"][1] <= 1
    assert extremes["relu"][0] == 0 < extremes["relu"][1]
    assert 0 < extremes["softmax"][0] < extremes["softmax"][1] < 1
    assert found["softmax_sum_error"] < 1e-6


def test_backprop_by_hand_equals_jax_grad(tmp_path: Path) -> None:
    found = _run(backprop_by_hand, tmp_path)
    assert found["max_difference"] < 1e-6
    assert found["loss"] == pytest.approx(found["loss_jax"], rel=1e-6)
    by_hand, with_jax = found["curves"]["by hand"], found["curves"]["jax.grad"]
    assert by_hand[-1] < 0.6 * by_hand[0]  # gradient descent lowers the loss
    np.testing.assert_allclose(by_hand, with_jax, rtol=1e-4)


def test_linear_layers_collapse_and_cannot_solve_xor(tmp_path: Path) -> None:
    found = _run(linear_collapse, tmp_path)
    assert found["product_shape"] == (8, 4)
    assert found["max_difference"] < 1e-5
    assert found["accuracy"]["two linear layers"] <= 0.75
    assert found["accuracy"]["a tanh between them"] == 1.0


def test_deep_net_beats_linear_model(tmp_path: Path) -> None:
    found = _run(nonlinear_world, tmp_path)
    temperature, income = found["temperature"], found["income"]
    assert temperature["deep"] < 0.2 * temperature["linear"]
    assert temperature["deep"] < 1.5 * temperature["noise_floor"]
    assert income["deep"] < income["linear"]
    assert income["linear"] == pytest.approx(income["best_line"], rel=0.05)  # trained, still wrong
    assert found["income_mean"] > found["income_median"]  # skewed


def test_hyperparameters_matter(tmp_path: Path) -> None:
    found = _run(hyperparameters, tmp_path)
    by_key = {(r["width"], r["depth"], r["lr"]): r["test_accuracy"] for r in found["rows"]}
    for width in found["grid"].widths:
        assert by_key[(width, 1, 1e-2)] > by_key[(width, 1, 1e-4)] + 0.3  # η too small: slow
    assert found["best"]["test_accuracy"] > 0.9
    assert all(len(r["curve"]) == found["grid"].epochs for r in found["rows"])


def test_cnn_and_mlp_learn_digits(tmp_path: Path) -> None:
    found = _run(digits, tmp_path)
    assert found["test_accuracy"]["mlp"] > 0.8 and found["test_accuracy"]["cnn"] > 0.8
    assert found["params"]["cnn"] < found["params"]["mlp"]
    for name, wrong in found["mistakes"].items():
        assert len(wrong["index"]) == round((1 - found["test_accuracy"][name]) * 360)
        assert (wrong["true"] != wrong["predicted"]).all()


def test_lstm_beats_persistence(tmp_path: Path) -> None:
    found = _run(sequences, tmp_path)
    assert found["mse"]["lstm"] < found["mse"]["persistence"]
    assert found["mse"]["lstm"] == pytest.approx(found["fit_test_loss"], rel=1e-4)
    assert found["mse"]["persistence"] == pytest.approx(found["persistence_check"], rel=1e-5)


def test_parameters_are_found_by_training(tmp_path: Path) -> None:
    found = _run(parameters, tmp_path)
    assert found["param_count"] == (8 * 9 + 9) + (9 * 4 + 4) == 121
    assert found["param_shapes"] == {
        "serial/dense_0": {"w": (8, 9), "b": (9,)},
        "serial/dense_1": {"w": (9, 4), "b": (4,)},
    }
    assert found["train_accuracy"] > 0.9
    assert found["relevant_rows"] > 2 * found["irrelevant_rows"]


def test_forward_pass_step_by_step(tmp_path: Path) -> None:
    found = _run(forward_pass, tmp_path)
    assert found["shapes"] == [(1, 8), (1, 9), (1, 9), (1, 4), (1, 4)]
    assert found["layers"][1:] == [
        "serial/dense_0",
        "serial/sigmoid_0",
        "serial/dense_1",
        "serial/softmax_0",
    ]
    assert ((found["hidden"] > 0) & (found["hidden"] < 1)).all()
    assert found["output"].sum() == pytest.approx(1.0, abs=1e-6)
    assert found["max_difference"] < 1e-6


def test_training_curves(tmp_path: Path) -> None:
    found = _run(training, tmp_path)
    history = found["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert history[-1]["test_accuracy"] > 0.85


def test_committed_figures_are_small_and_shown_in_the_tutorial() -> None:
    root = Path(__file__).resolve().parents[1]
    figures = sorted((root / "docs" / "figures").glob("*.png"))
    experiments = {path.stem for path in (root / "experiments").glob("*.py")}
    tutorial = (root / "docs" / "tutorial.md").read_text()
    assert len(figures) >= 11
    for figure in figures:
        assert figure.stat().st_size <= 100_000, f"{figure.name}: keep figures under 100 KB"
        assert figure.stem in experiments, (
            f"{figure.name}: no experiments/{figure.stem}.py draws it"
        )
        assert f"(figures/{figure.name})" in tutorial, f"{figure.name} is not in the tutorial"
