"""The ``jaxnet`` command: train recipes, list them, summarize them, evaluate run folders.

Bad flags print one line on stderr and exit with status 2, without a traceback; a run stopped by
a non-finite loss exits with 1; Ctrl-C saves a checkpoint and exits with 130.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

USAGE_ERROR, RUN_ERROR, INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"jaxnet: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="jaxnet", description="A functional training library for JAX.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = commands.add_parser("train", help="train a recipe and write a run folder")
    train.add_argument("recipe", nargs="?", default="digits-mlp", help="default: digits-mlp")
    train.add_argument("--epochs", type=int, help="passes over the training data")
    train.add_argument("--lr", type=float, help="learning rate η")
    train.add_argument("--batch-size", type=int, help="examples per step")
    train.add_argument("--width", type=int, help="units per hidden layer")
    train.add_argument("--depth", type=int, help="hidden layers (0 = a linear model)")
    train.add_argument("--activation", help="relu, tanh, sigmoid, ...")
    train.add_argument("--optimizer", help="adam, sgd or momentum")
    train.add_argument("--seed", type=int, help="seeds init, shuffling and the split")
    train.add_argument("--precision", help="compute dtype: float32, bfloat16 or float16")
    train.add_argument("--cell", help="recurrent recipes: lstm, gru or rnn")
    train.add_argument("--heads", type=int, help="attention recipes: attention heads")
    train.add_argument("--devices", type=int, help="train data-parallel over this many devices")
    train.add_argument("--out", help="run folder (default: runs/<recipe>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run folder's training")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep = commands.add_parser("sweep", help="train many variants of a recipe at once")
    sweep.add_argument("recipe", nargs="?", default="digits-mlp", help="default: digits-mlp")
    sweep.add_argument(
        "--lr", type=_comma_list(float), required=True, help="learning rates, e.g. 0.01,0.1,1"
    )
    sweep.add_argument("--seeds", type=int, default=1, help="seeds per learning rate")
    sweep.add_argument("--width", type=_comma_list(int), help="widths, e.g. 32,128")
    sweep.add_argument("--depth", type=_comma_list(int), help="depths, e.g. 1,2,3")
    sweep.add_argument("--epochs", type=int)
    sweep.add_argument("--batch-size", type=int)
    sweep.add_argument("--optimizer")
    sweep.add_argument("--activation")
    sweep.add_argument("--out", help="run folder (default: runs/sweep-<recipe>-<timestamp>)")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    commands.add_parser("recipes", help="list the recipes")
    summary = commands.add_parser("summary", help="print a recipe's model table")
    summary.add_argument("recipe")
    evaluate = commands.add_parser("evaluate", help="evaluate a run folder on its test split")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("--which", choices=("latest", "best"), default="latest")
    return parser


def _comma_list(kind: type) -> Any:
    """An argparse type for comma-separated values of ``kind``: ``"0.01,0.1"``."""

    def parse(text: str) -> list[Any]:
        try:
            return [kind(part) for part in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {kind.__name__}s separated by commas, got {text!r}"
            ) from None

    return parse


def _sweep(args: argparse.Namespace) -> int:
    from jaxnet import sweep, train

    out = args.out or train.default_run_dir(f"sweep-{args.recipe}")
    settings = {k: getattr(args, k) for k in ("epochs", "batch_size", "optimizer", "activation")}
    rows = sweep.grid(
        args.recipe,
        learning_rates=args.lr,
        seeds=args.seeds,
        widths=args.width,
        depths=args.depth,
        run_dir=out,
        progress=not args.no_progress,
        **{k: v for k, v in settings.items() if v is not None},
    )
    metric = "test_accuracy" if "test_accuracy" in rows[0] else "test_loss"
    print(sweep.results_table(rows, ["width", "depth", "lr", "seed", metric, "diverged_at"]))
    print(f"run folder: {out}")
    return 0


_HYPERPARAMETERS = (
    "epochs",
    "lr",
    "batch_size",
    "width",
    "depth",
    "activation",
    "optimizer",
    "seed",
    "precision",
    "cell",
    "heads",
)


def _train(args: argparse.Namespace) -> int:
    from jaxnet import distributed, recipes, train

    if args.resume:
        config = train.RunFolder(args.resume).read_config()
        changed = [k for k in _HYPERPARAMETERS if k != "epochs" and getattr(args, k) is not None]
        if changed:
            raise ValueError(f"--resume keeps the run's config; cannot change --{changed[0]}")
        if args.epochs is not None:
            config["epochs"] = args.epochs
        run_dir, resume = args.resume, True
    else:
        config = recipes.make_config(args.recipe, **{k: getattr(args, k) for k in _HYPERPARAMETERS})
        run_dir, resume = args.out or train.default_run_dir(args.recipe), False
    job = recipes.build(config)
    print(f"jaxnet train {config['recipe']}: {job.data!r}", flush=True)
    mesh = None if args.devices is None else distributed.make_mesh(args.devices)
    print(_devices_line(mesh), flush=True)
    result = job.fit(run_dir=run_dir, resume=resume, progress=not args.no_progress, mesh=mesh)
    print(_report(result.history, result.run_dir, result.stopped))
    for name, value in job.baselines.items():
        print(f"baseline: {name} {value:.4f}")
    return INTERRUPTED if result.stopped == "interrupted" else 0


def _devices_line(mesh: Any) -> str:
    """Where the run trains, e.g. ``devices: 1 × NVIDIA H200 (gpu)`` or ``1 × cpu (cpu)``."""
    import jax

    devices = jax.devices()[:1] if mesh is None else list(mesh.devices.flat)
    kinds = sorted({f"{d.device_kind} ({d.platform})" for d in devices})
    return f"devices: {len(devices)} × {', '.join(kinds)}"


def _report(history: list[dict[str, Any]], run_dir: Any, stopped: str) -> str:
    last = history[-1] if history else {}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith("test_"))
    note = "" if stopped == "completed" else f" (stopped: {stopped})"
    return f"epoch {last.get('epoch', 0)}: {shown}{note}\nrun folder: {run_dir}"


def _recipes() -> int:
    from jaxnet import recipes

    width = max(map(len, recipes.names()))
    for name in recipes.names():
        print(f"{name:<{width}}  {recipes.get(name).description}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from jaxnet import recipes, summary

    job = recipes.build(recipes.make_config(args.recipe))
    summary(job.net, (job.config["batch_size"], *job.data.feature_shape))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import jax

    from jaxnet import recipes, train

    loaded = train.load(args.run_dir, which=args.which)
    job = recipes.build(loaded.config)
    eval_step = jax.jit(train.make_eval_step(job.net, job.loss, metrics=job.metrics))
    results = train.evaluate(eval_step, loaded.train_state, job.data.x_test, job.data.y_test)
    epoch = int(loaded.train_state.step) // max(job.data.num_train // job.config["batch_size"], 1)
    print(
        f"{args.run_dir} ({args.which}, epoch {epoch}): "
        + ", ".join(f"test_{k} {v:.4f}" for k, v in results.items())
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxnet`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from jaxnet.train import CheckpointError, NonFiniteError

    handlers = {"train": _train, "recipes": lambda a: _recipes(), "summary": _summary}
    handlers |= {"evaluate": _evaluate, "sweep": _sweep}
    try:
        return handlers[args.command](args)
    except NonFiniteError as error:
        print(f"jaxnet: {error}", file=sys.stderr)
        return RUN_ERROR
    except (ValueError, TypeError, FileNotFoundError, CheckpointError) as error:
        print(f"jaxnet: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("jaxnet: interrupted", file=sys.stderr)
        return INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
