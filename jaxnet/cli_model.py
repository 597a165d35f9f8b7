"""The commands of ``jaxnet`` that use a trained model: ``evaluate``, ``predict``, ``export``.

They work on any run folder with a ``model.json`` (every run of ``fit(run_dir=...)`` on a net
built from jaxnet's layers), with no code from the user. :mod:`jaxnet.cli` parses the flags
and turns errors into one line each.
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

OK = 0


def add_commands(commands: Any) -> None:
    """Add ``evaluate``, ``predict`` and ``export`` to the ``jaxnet`` subparsers."""
    evaluate = commands.add_parser("evaluate", help="evaluate a run folder on its test split")
    evaluate.add_argument("run_dir")
    _add_choice_of_checkpoint(evaluate)
    evaluate.add_argument(
        "--data",
        metavar="FILE",
        help="raw labelled data instead of the run's test split: .npz with x and y, or .csv "
        "with a y (label, target) column",
    )
    predict = commands.add_parser("predict", help="predict with a run folder's model")
    predict.add_argument("run_dir")
    predict.add_argument("input", help="raw inputs: .npy, .npz (array x) or .csv")
    predict.add_argument("--output", metavar="FILE", help=".csv or .npy (default: CSV on stdout)")
    _add_choice_of_checkpoint(predict)
    predict.add_argument("--proba", action="store_true", help="class probabilities, not labels")
    predict.add_argument("--batch-size", type=int, default=1024)
    export = commands.add_parser("export", help="write a run's model for serving")
    export.add_argument("run_dir")
    export.add_argument("--out", metavar="DIR", help="default RUN_DIR/export")
    export.add_argument("--platforms", default="cpu", help="comma-separated: cpu,cuda,rocm,tpu")
    _add_choice_of_checkpoint(export)


def _add_choice_of_checkpoint(command: argparse.ArgumentParser) -> None:
    """``--which latest|best`` and ``--step N``: the checkpoint a command reads."""
    command.add_argument("--which", choices=("latest", "best"), default="latest")
    command.add_argument(
        "--step",
        type=int,
        metavar="EPOCH",
        help="this checkpoint (an epoch) instead of --which: for a run whose newest is damaged",
    )


# ----------------------------------------------------------------------------- evaluate


def evaluate(args: argparse.Namespace) -> int:
    """``jaxnet evaluate RUN_DIR``: rebuild the net, restore a checkpoint, test it."""
    from jaxnet import train

    folder = train.RunFolder(args.run_dir)
    if not (folder.path / "model.json").is_file() and "recipe" in folder.read_config():
        return _evaluate_old_recipe_run(args)
    run = train.load(args.run_dir, step=args.step, which=args.which)
    loss, metrics = _named_loss_and_metrics(run.description, folder.path / "model.json")
    x, y = _labelled(run, args.data)
    results = _evaluate(run.net, loss, metrics, run.params, run.state, x, y)
    _print_results(args, run.step, results)
    return OK


def _named_loss_and_metrics(
    description: Mapping[str, Any], file: pathlib.Path
) -> tuple[Callable[..., Any], dict[str, Callable[..., Any]]]:
    """The loss and metrics model.json names (functions of ``jn.losses``/``jn.metrics``)."""
    from jaxnet import losses, metrics

    name = description.get("loss")
    if name is None:
        raise ValueError(
            f"{file}: names no loss (the run was trained with a loss of its own, not one of "
            "jn.losses), so evaluate cannot compute one"
        )
    named = {key: fn for key, fn in (description.get("metrics") or {}).items() if fn is not None}
    return getattr(losses, name), {key: getattr(metrics, fn) for key, fn in named.items()}


def _labelled(run: Any, data_file: str | None) -> tuple[Any, Any]:
    """The net's inputs and targets to test on: ``--data`` (raw, preprocessed here) or the
    test split of the named dataset the run was trained on."""
    from jaxnet import data

    description = run.description
    if data_file is not None:
        from jaxnet.data import files

        arrays = files.read_arrays(data_file)
        if "y" not in arrays:
            raise ValueError(f"{data_file}: holds no targets (an array or column named y)")
        x = run.model.preprocessing.check(arrays["x"], what=data_file)
        return run.model.preprocessing(x), _targets(arrays["y"], description, data_file, len(x))
    origin = description.get("data")
    if origin is None:
        raise ValueError(
            f"{run.run_dir}: the run's data did not come from jaxnet.data.load or a data file, "
            "so there is no test split to reload; pass --data FILE (.npz with x and y, or .csv "
            "with a y column)"
        )
    if "file" in origin:  # jaxnet train --data FILE: the same split of the same file
        from jaxnet.data.user_file import check_unchanged, from_file

        check_unchanged(origin, str(pathlib.Path(run.run_dir) / "model.json"))
        split = {k: origin.get(k) for k in ("target", "task")}
        split |= {k: origin[k] for k in ("seed", "test_fraction", "val_fraction")}
        dataset = from_file(origin["file"], **split)
    else:
        dataset = data.load(**origin)
    return dataset.x_test, dataset.y_test


def _targets(y: np.ndarray, description: Mapping[str, Any], file: str, n: int) -> np.ndarray:
    """``y`` as the loss expects it: int32 labels, or float32 ``(n, targets)`` values."""
    if len(y) != n:
        raise ValueError(f"{file}: x has {n} rows but y has {len(y)}")
    if description.get("task") == "classification":
        if not np.array_equal(y, np.round(y)):
            raise ValueError(f"{file}: class labels must be whole numbers")
        return y.astype(np.int32)
    return y.reshape(n, -1).astype(np.float32)


def _evaluate(
    net: Any, loss: Any, metrics: Any, params: Any, state: Any, x: Any, y: Any
) -> dict[str, float]:
    import jax

    from jaxnet import train

    eval_step = jax.jit(train.make_eval_step(net, loss, metrics=metrics))
    held = train.TrainState(params, state, None, jax.numpy.int32(0), jax.random.key(0))
    return train.evaluate(eval_step, held, x, y)


def _print_results(args: argparse.Namespace, epoch: int, results: Mapping[str, float]) -> None:
    print(
        f"{args.run_dir} ({args.which if args.step is None else '--step'}, epoch {epoch}): "
        + ", ".join(f"test_{k} {v:.4f}" for k, v in results.items())
    )


def _evaluate_old_recipe_run(args: argparse.Namespace) -> int:
    """A recipe run written before model.json existed: rebuilt from its recipe config."""
    from jaxnet import recipes, train

    folder = train.RunFolder(args.run_dir)
    job = recipes.build(folder.read_config())
    checkpoints = folder.checkpointer()
    step = args.step if args.step is not None else checkpoints.pick_step(args.which)
    if step is None:
        raise FileNotFoundError(f"run folder {str(folder.path)!r} has no checkpoint")
    ts = checkpoints.restore(job.initial_state(), step)
    results = _evaluate(
        job.net, job.loss, job.metrics, ts.params, ts.state, job.data.x_test, job.data.y_test
    )
    _print_results(args, step, results)
    return OK


# ----------------------------------------------------------------------------- predict


def predict(args: argparse.Namespace) -> int:
    """``jaxnet predict RUN_DIR INPUT``: predictions on raw inputs, as CSV or .npy."""
    from jaxnet import train
    from jaxnet.data import files

    run = train.load(args.run_dir, step=args.step, which=args.which)
    names = run.description.get("feature_names")
    if pathlib.Path(args.input).suffix.lower() != ".csv":
        raw = files.read_array(args.input)
    elif names:  # by the header's names: any order, the training file's target left out
        target = (run.description.get("data") or {}).get("target")
        raw = files.read_features(args.input, names, target=target)
    else:  # without a y/label/target column
        raw = files.read_arrays(args.input)["x"]
    x = run.model.preprocessing.check(raw, what=args.input)
    if args.proba:
        values = run.predict_proba(x, batch_size=args.batch_size)
        header = _proba_header(run.model.class_names, values.shape[-1])
    else:
        values = run.predict(x, batch_size=args.batch_size)
        header = _prediction_header(run.description, values)
    _write_predictions(values, header, args.output, _text_labels(run.description))
    return OK


def _text_labels(description: Mapping[str, Any]) -> list[str] | None:
    """The class names of a run trained on a file whose labels were text (``setosa``): its
    predictions are written as those names, as the file wrote them; None otherwise (labels
    stay the class numbers)."""
    from_file = bool((description.get("data") or {}).get("file"))
    names = description.get("target_names")
    return names if from_file and description.get("task") == "classification" else None


def _prediction_header(description: Mapping[str, Any], values: np.ndarray) -> list[str]:
    columns = int(np.prod(values.shape[1:], dtype=int))
    if description.get("task") == "classification":
        return ["label"] if columns == 1 else [f"label_{i}" for i in range(columns)]
    names = description.get("target_names")
    if names and len(names) == columns:
        return list(names)
    return ["prediction"] if columns == 1 else [f"prediction_{i}" for i in range(columns)]


def _proba_header(class_names: Sequence[str] | None, classes: int) -> list[str]:
    if class_names and len(class_names) == classes:
        return [f"p_{name}" for name in class_names]
    return [f"p_{i}" for i in range(classes)]


def _write_predictions(
    values: np.ndarray,
    header: list[str],
    output: str | None,
    classes: Sequence[str] | None = None,
) -> None:
    """``.npy`` keeps the array as it is; CSV (a file or stdout) has one row per example,
    with the class names for the labels of a run that knows them."""
    from jaxnet import atomic

    suffix = None if output is None else pathlib.Path(output).suffix.lower()
    if suffix not in (None, ".csv", ".npy"):
        raise ValueError(f"--output {output}: expected a .csv or .npy file, got {suffix!r}")
    if output is not None and suffix == ".npy":
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        atomic.write_bytes(pathlib.Path(output), buffer.getvalue())
        return
    table = values.reshape(len(values), -1)
    if len(header) != table.shape[1]:
        header = [f"column_{i}" for i in range(table.shape[1])]
    text = io.StringIO()
    if classes and np.issubdtype(table.dtype, np.integer):
        table = np.asarray(classes, dtype=object)[table]
        np.savetxt(text, table, fmt="%s", delimiter=",", header=",".join(header), comments="")
    else:
        fmt = "%d" if np.issubdtype(table.dtype, np.integer) else "%.9g"
        np.savetxt(text, table, fmt=fmt, delimiter=",", header=",".join(header), comments="")
    if output is None:
        sys.stdout.write(text.getvalue())
    else:
        atomic.write_text(pathlib.Path(output), text.getvalue())


# ----------------------------------------------------------------------------- export


def export(args: argparse.Namespace) -> int:
    """``jaxnet export RUN_DIR``: the forward pass, weights and signature for serving."""
    from jaxnet.export import export as write_export

    platforms = tuple(p.strip() for p in args.platforms.split(",") if p.strip())
    files = write_export(
        args.run_dir, args.out, platforms=platforms, step=args.step, which=args.which
    )
    print(f"exported {args.run_dir} for {', '.join(platforms)} to {files.out_dir}/")
    for path in (files.forward, files.params, files.signature):
        print(f"  {path.name}")
    return OK
