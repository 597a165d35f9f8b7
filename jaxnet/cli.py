"""The ``jaxnet`` command: train recipes, list them, summarize them; evaluate, predict with
and export the model of a run folder (:mod:`jaxnet.cli_model`).

Every error is one line on stderr (``jaxnet: error: ...``), without a traceback, and the exit
status says what kind it was:

===  ==========================================================================================
0    done: training completed, stopped early, or had nothing left to train
1    the loss or the parameters went non-finite (the last good checkpoint is kept)
2    usage: a bad flag or value, a missing run folder, a missing optional extra
74   the operating system refused a read or write (a full disk, an ``--out`` below a file);
     ``EX_IOERR`` of BSD's ``sysexits.h``. The line is ``jaxnet: error: <path>: <cause>``
130  Ctrl-C: in training the current epoch finishes and is checkpointed first; before, at once
===  ==========================================================================================

``jaxnet --help`` imports neither JAX nor matplotlib: the commands import what they need.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import pathlib
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from jaxnet import cli_lr_find, cli_model
from jaxnet.version import __version__

OK, RUN_ERROR, USAGE_ERROR, IO_ERROR, INTERRUPTED = 0, 1, 2, 74, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line on stderr (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``jaxnet: error: <message>`` and exit with the usage status."""
        self.exit(USAGE_ERROR, f"jaxnet: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    """The parser of ``jaxnet`` and its subcommands."""
    parser = _Parser(prog="jaxnet", description="A functional training library for JAX.")
    parser.add_argument("--version", action="version", version=f"jaxnet {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_train(commands.add_parser("train", help="train a recipe and write a run folder"))
    _add_sweep(commands.add_parser("sweep", help="train many variants of a recipe at once"))
    recipes = commands.add_parser("recipes", help="list the recipes")
    recipes.add_argument("--markdown", action="store_true", help="the table of docs/cli.md")
    summary = commands.add_parser("summary", help="print a recipe's model table")
    summary.add_argument(
        "recipe", nargs="?", default=_DEFAULT_RECIPE, help=f"default {_DEFAULT_RECIPE}"
    )
    cli_model.add_commands(commands)
    cli_lr_find.add_command(commands, _DEFAULT_RECIPE)
    return parser


def _add_train(train: argparse.ArgumentParser) -> None:
    """The flags of ``jaxnet train``."""
    train.add_argument("recipe", nargs="?", help=f"default: {_DEFAULT_RECIPE}")
    train.add_argument("--epochs", type=int, help="passes over the training data")
    train.add_argument("--lr", type=float, help="learning rate η")
    train.add_argument("--batch-size", type=int, help="examples per step")
    train.add_argument(
        "--width", type=int, help="units per hidden layer (conv recipes: first channels)"
    )
    train.add_argument(
        "--depth",
        type=int,
        help="hidden layers (0 = a linear model; digits-cnn: conv blocks, digits-unet: levels)",
    )
    train.add_argument("--activation", help=_ACTIVATIONS_HELP)
    train.add_argument("--optimizer", help="adam, adamw, sgd, momentum or rmsprop")
    train.add_argument("--seed", type=int, help="seeds init, shuffling and the split")
    train.add_argument("--precision", help="compute dtype: float32, bfloat16 or float16")
    train.add_argument("--cell", help="recurrent recipes: lstm, gru or rnn")
    train.add_argument("--heads", type=int, help="attention recipes: attention heads")
    train.add_argument("--data", metavar="FILE", help="your own .npz (x, y) or .csv file")
    train.add_argument("--target", metavar="COLUMN", help="--data FILE.csv: the column to predict")
    train.add_argument(
        "--task",
        choices=("classification", "regression"),
        help="--data: what the target is (default: whole numbers in a CSV are class labels)",
    )
    train.add_argument(
        "--val-fraction",
        type=float,
        help="share held out for validation, which picks the best checkpoint (default 0.1)",
    )
    train.add_argument("--devices", type=int, help="train data-parallel over this many devices")
    train.add_argument("--out", help="run folder (default: runs/<recipe>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run folder's training")
    train.add_argument(
        "--checkpoint-every", type=int, metavar="N", help="checkpoint every N epochs"
    )
    train.add_argument("--tensorboard", action="store_true", help="also log TensorBoard events")
    train.add_argument(
        "--profile",
        metavar="FIRST,LAST",
        help="trace train steps FIRST to LAST with jax.profiler into RUN_DIR/profile",
    )
    train.add_argument(
        "--plateau",
        type=int,
        metavar="N",
        help="reduce the learning rate tenfold after N epochs without improvement",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs in $JAXNET_CACHE_DIR (default ~/.cache/jaxnet/xla)",
    )


def _add_sweep(sweep: argparse.ArgumentParser) -> None:
    """The flags of ``jaxnet sweep``."""
    sweep.add_argument("recipe", nargs="?", default=_DEFAULT_RECIPE, help="default: digits-mlp")
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
    """``jaxnet sweep``: many variants of a recipe in one compiled program."""
    from jaxnet import recipes, sweep, train

    out = args.out or train.default_run_dir(f"sweep-{args.recipe}")
    settings = {k: getattr(args, k) for k in ("epochs", "batch_size", "optimizer", "activation")}
    rows = recipes.grid(
        args.recipe,
        learning_rates=args.lr,
        seeds=args.seeds,
        widths=args.width,
        depths=args.depth,
        run_dir=out,
        progress=not args.no_progress,
        **{k: v for k, v in settings.items() if v is not None},
    )
    split = "val" if any(k.startswith("val_") for k in rows[0]) else "test"
    metric = f"{split}_accuracy" if f"{split}_accuracy" in rows[0] else f"{split}_loss"
    print(sweep.results_table(rows, ["width", "depth", "lr", "seed", metric, "diverged_at"]))
    print(f"run folder: {out}")
    return OK


_DEFAULT_RECIPE = "digits-mlp"
# jaxnet.recipes.ACTIVATIONS, spelled out: --help imports no JAX (tests/test_cli.py compares them)
_ACTIVATIONS_HELP = (
    "relu, tanh, sigmoid, leaky_relu, elu, selu, gelu (tanh approximation), "
    "gelu_exact (exact, through erf), softplus or swish"
)
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
    "val_fraction",
)


def _train(args: argparse.Namespace) -> int:
    """``jaxnet train``: every check first, then the run folder, then the training."""
    from jaxnet import distributed, recipes

    _check_run_flags(args)
    if not args.no_compile_cache:
        _compile_cache()
    if args.resume:
        config, run_dir = _resume_config(args), pathlib.Path(args.resume)
        trained = _trained_epochs(run_dir)
        if trained >= config["epochs"]:
            print(_nothing_to_train(run_dir, trained, config["epochs"]))
            return OK
    else:
        config, run_dir = _new_config(args)
    if args.resume and config.get("data"):
        _check_data_unchanged(run_dir)  # before the file is read for the recipe
    job = recipes.build(config)
    _check_batch_size(job.config["batch_size"], job.data)
    options = _fit_options(args)
    if args.resume:
        print(f"resuming {run_dir} from epoch {trained}", flush=True)
    else:
        _make_run_folder(run_dir)
    if config.get("data"):  # the user's file: first, what it was read as
        from jaxnet.data.user_file import task_line

        print(f"{config['data']}: {task_line(job.data)}", flush=True)
    source = f" from {config['data']}" if config.get("data") else ""
    print(f"jaxnet train {config['recipe']}{source}: {job.data!r}", flush=True)
    mesh = None if args.devices is None else distributed.make_mesh(args.devices)
    print(_devices_line(mesh), flush=True)
    with _naming_the_run_folder(run_dir):
        result = job.fit(run_dir=run_dir, resume=bool(args.resume), mesh=mesh, **options)
    print(_report(result.history, result.run_dir, result.stopped))
    for name, value in job.baselines.items():
        print(f"baseline: {name} {value:.4f}")
    if result.stopped == "interrupted":  # the first Ctrl-C: the epoch finished and was saved
        return _fail("jaxnet: interrupted", INTERRUPTED)
    return OK


def _compile_cache() -> None:
    """JAX's persistent compilation cache, so a second run skips compiling; a folder that
    cannot be made costs only that (one warning line), never the run."""
    from jaxnet import train

    try:
        train.enable_compile_cache()
    except OSError as error:
        print(f"jaxnet: warning: no compilation cache ({error})", file=sys.stderr, flush=True)


def _check_data_unchanged(run_dir: pathlib.Path) -> None:
    """A resumed ``--data`` run must read the same bytes: model.json records the file's hash."""
    from jaxnet import train
    from jaxnet.data.user_file import check_unchanged

    model = run_dir / "model.json"
    origin = train.RunFolder(run_dir).read_model().get("data") if model.is_file() else None
    if origin and "file" in origin:
        check_unchanged(origin, str(model))


def _check_run_flags(args: argparse.Namespace) -> None:
    """``--checkpoint-every`` and ``--devices``, checked before anything is loaded or written."""
    import jax

    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise ValueError(f"--checkpoint-every must be an int >= 1, got {args.checkpoint_every}")
    if args.tensorboard:
        from jaxnet.runs.loggers import check_logger

        check_logger("tensorboard", args.out or args.resume or ".")  # the extra is installed
    if args.devices is None:
        return
    if args.devices < 1:
        raise ValueError(f"--devices must be an int >= 1, got {args.devices}")
    visible = jax.devices()
    if args.devices > len(visible):
        count = f"{len(visible)} device{'s' if len(visible) > 1 else ''}"
        raise ValueError(
            f"--devices {args.devices} is more than the {count} available ({visible[0].platform})"
        )


def _new_config(args: argparse.Namespace) -> tuple[dict[str, Any], pathlib.Path]:
    """The config of a fresh run and its folder, which must not hold a run already."""
    from jaxnet import recipes, train

    recipe = args.recipe or _DEFAULT_RECIPE
    config = recipes.make_config(recipe, **{k: getattr(args, k) for k in _HYPERPARAMETERS})
    if args.target is not None and args.data is None:
        raise ValueError("--target names a column of --data FILE.csv; give --data too")
    if args.task is not None and args.data is None:
        raise ValueError("--task says what the target of --data FILE is; give --data too")
    if args.plateau is not None:
        if args.plateau < 1:
            raise ValueError(f"--plateau must be an int >= 1, got {args.plateau}")
        config["plateau"] = args.plateau
    if args.data is not None:  # the file, as an absolute path: --resume reads it again
        config |= {"data": str(pathlib.Path(args.data).resolve()), "target": args.target}
        config |= {"task": args.task}
    run_dir = pathlib.Path(args.out) if args.out else train.default_run_dir(recipe)
    folder = train.RunFolder(run_dir)
    if (run_dir / "config.json").is_file() or folder.checkpointer().latest_step() is not None:
        raise ValueError(
            f"--out {run_dir} already holds a run; "
            f"continue it with --resume {run_dir} or choose another --out"
        )
    return config, run_dir


def _resume_config(args: argparse.Namespace) -> dict[str, Any]:
    """The config of the run to continue: only ``--epochs`` may change."""
    from jaxnet import train

    config = train.RunFolder(args.resume).read_config()
    if "recipe" not in config:
        raise ValueError(
            f"{args.resume!r} was written by fit() with a hand-built net, not a recipe; "
            "continue it from Python with fit(..., resume=True)"
        )
    if args.recipe is not None and args.recipe != config["recipe"]:
        raise ValueError(
            "--resume keeps the run's config; "
            f"cannot change the recipe from {config['recipe']!r} to {args.recipe!r}"
        )
    changed = [
        k
        for k in (*_HYPERPARAMETERS[1:], "out", "data", "target", "task", "plateau")
        if getattr(args, k) is not None
    ]
    if changed:
        flag = changed[0].replace("_", "-")
        raise ValueError(f"--resume keeps the run's config; cannot change --{flag}")
    config.setdefault("val_fraction", 0.0)  # a run folder from before validation splits
    return config if args.epochs is None else config | {"epochs": args.epochs}


def _trained_epochs(run_dir: pathlib.Path) -> int:
    """The epoch a resume starts from: the run's newest checkpoint that verifies (checkpoints
    are named by epoch); 0 for a run killed before its first checkpoint, which starts over."""
    from jaxnet import train

    return train.RunFolder(run_dir).checkpointer().verified_step()[0] or 0


def _nothing_to_train(run_dir: pathlib.Path, trained: int, epochs: int) -> str:
    """What ``--resume`` says when the run has reached ``epochs`` already."""
    done = (
        f"{trained} of {epochs} epochs" if trained == epochs else f"{trained} epochs, not {epochs}"
    )
    return (
        f"{run_dir} has trained {done}; nothing to train "
        f"(pass --epochs N with N > {trained} to train more)"
    )


def _check_batch_size(batch_size: int, data: Any) -> None:
    """A batch must fit in the training split."""
    if batch_size > data.num_train:
        raise ValueError(
            f"--batch-size {batch_size} is larger than the {data.num_train} "
            f"training examples of {data.name}"
        )


def _make_run_folder(run_dir: pathlib.Path) -> None:
    """Create the run folder, so that a path the OS refuses fails before anything is printed."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(run_dir))
    run_dir.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _naming_the_run_folder(run_dir: pathlib.Path) -> Iterator[None]:
    """An OS error that names no file (a ``write`` to a full disk) names the run folder."""
    try:
        yield
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(run_dir)) from error
        raise


def _fit_options(args: argparse.Namespace) -> dict[str, Any]:
    """``fit``'s run options from the flags: progress, checkpoint cadence, TensorBoard."""
    from jaxnet import train

    return {
        "progress": not args.no_progress,
        "checkpointing": train.Checkpointing(every=args.checkpoint_every),
        "loggers": ["tensorboard"] if args.tensorboard else [],
        "profile": _profile_steps(args.profile),
    }


def _profile_steps(flag: str | None) -> tuple[int, int] | None:
    """``--profile FIRST,LAST`` as two steps; fit checks their order."""
    if flag is None:
        return None
    parts = flag.split(",")
    if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
        raise ValueError(f"--profile must be FIRST,LAST train steps such as 10,20, got {flag!r}")
    first, last = (int(part) for part in parts)
    if not 1 <= first <= last:
        raise ValueError(f"--profile needs 1 <= FIRST <= LAST, got {flag!r}")
    return first, last


def _devices_line(mesh: Any) -> str:
    """Where the run trains, e.g. ``devices: 1 × NVIDIA H200 (gpu)`` or ``1 × cpu (cpu)``."""
    import jax

    devices = jax.devices()[:1] if mesh is None else list(mesh.devices.flat)
    kinds = sorted({f"{d.device_kind} ({d.platform})" for d in devices})
    return f"devices: {len(devices)} × {', '.join(kinds)}"


def _report(history: list[dict[str, Any]], run_dir: Any, stopped: str) -> str:
    """The last epoch's validation and test metrics and the run folder."""
    last = history[-1] if history else {}
    held_out = ("val_", "test_")
    shown = ", ".join(f"{k} {v:.4f}" for k, v in last.items() if k.startswith(held_out))
    note = "" if stopped == "completed" else f" (stopped: {stopped})"
    return f"epoch {last.get('epoch', 0)}: {shown}{note}\nrun folder: {run_dir}"


def _recipes(args: argparse.Namespace) -> int:
    """``jaxnet recipes``: one line per recipe, or with ``--markdown`` the table of the docs."""
    from jaxnet import recipes

    if args.markdown:
        print(_recipe_table())
        return OK
    width = max(map(len, recipes.names()))
    for name in recipes.names():
        print(f"{name:<{width}}  {recipes.get(name).description}")
    return OK


def _recipe_table() -> str:
    """Every recipe's data, default net and default training, as a Markdown table."""
    from jaxnet import data, recipes

    rows = ["| recipe | data | default net | default training |", "|---|---|---|---|"]
    for recipe in recipes.RECIPES.values():
        d = recipe.defaults
        dataset = data.load(recipe.dataset, seed=d["seed"], val_fraction=d["val_fraction"])
        training = (
            f"{d['optimizer']} η = {d['lr']:g}, {d['epochs']} epochs, batch {d['batch_size']}"
        )
        net = _net_text(recipe.architecture, d, dataset)
        rows.append(f"| `{recipe.name}` | {_data_text(dataset)} | {net} | {training} |")
    return "\n".join(rows)


def _data_text(dataset: Any) -> str:
    """``digits: 1257 training and 180 validation examples, 10 classes`` (or
    ``regression``)."""
    task = f"{dataset.num_classes} classes" if dataset.num_classes else dataset.task
    examples = f"{dataset.num_train} training and {dataset.num_val} validation examples"
    return f"`{dataset.name}`: {examples}, {task}"


def _net_text(architecture: str, d: Any, dataset: Any) -> str:
    """A recipe's default net in one line: ``64 → 128 → 128 → 10, relu``."""
    shape = "×".join(map(str, dataset.feature_shape))
    out = dataset.num_classes or dataset.y_train.shape[-1]
    width, depth = d["width"], d["depth"]
    if architecture == "cnn":
        image = "×".join(map(str, dataset.image_shape or (*dataset.feature_shape, 1)))
        channels = ", ".join(str(width * 2**block) for block in range(depth))
        blocks = f"{depth} block{'s' if depth > 1 else ''} of 3×3 conv ({channels} channels)"
        return f"{image} → {blocks}, {d['activation']}, 2×2 max pool → {out}"
    if architecture == "unet":
        return _unet_text(d, dataset, out)
    if architecture == "recurrent":
        layers = [f"{d['cell']} {width}"] * depth
        return f"{shape} → {' → '.join(layers)} → {out}"
    if architecture == "transformer":
        blocks = f"{depth} attention block{'s' if depth > 1 else ''}"
        return f"{shape} tokens → {blocks}, width {width}, {d['heads']} heads → {out} per token"
    return f"{' → '.join([shape, *[str(width)] * depth, str(out)])}, {d['activation']}"


def _unet_text(d: Any, dataset: Any, out: int) -> str:
    """A U-Net recipe's default net: ``8×8×1 → 3×3 conv 16, 2×2 max pool → 4×4: 3×3 conv 32
    → 2×2 transposed conv 16, concat skip (16 + 16 channels), 3×3 conv 16 → 8×8: flatten →
    10, relu``."""
    image = tuple(dataset.image_shape or (*dataset.feature_shape, 1))
    width, depth = d["width"], d["depth"]
    channels = [width * 2**level for level in range(depth)]
    down = " → ".join(f"3×3 conv {c}, 2×2 max pool" for c in channels)
    bottom = "×".join(str(side // 2**depth) for side in image[:-1])
    up = " → ".join(
        f"2×2 transposed conv {c}, concat skip ({c} + {c} channels), 3×3 conv {c}"
        for c in reversed(channels)
    )
    size = "×".join(map(str, image[:-1]))
    return (
        f"{'×'.join(map(str, image))} → {down} → {bottom}: 3×3 conv {width * 2**depth} → {up} "
        f"→ {size}: flatten → {out}, {d['activation']}"
    )


def _summary(args: argparse.Namespace) -> int:
    """``jaxnet summary [RECIPE]``: the model table of the recipe's default net (the one
    ``jaxnet train`` trains when no recipe is named)."""
    from jaxnet import recipes, summary

    job = recipes.build(recipes.make_config(args.recipe))
    summary(job.net, (job.config["batch_size"], *job.data.feature_shape))
    return OK


_COMMANDS = {
    "train": _train,
    "sweep": _sweep,
    "recipes": _recipes,
    "summary": _summary,
    "evaluate": cli_model.evaluate,
    "predict": cli_model.predict,
    "export": cli_model.export,
    "lr-find": cli_lr_find.lr_find,
}


def _os_error_line(error: OSError) -> str:
    """``<path>: <cause>`` (``run/curves.png: File too large``), as the OS names them."""
    cause = error.strerror or str(error)
    if error.filename is None:
        return cause
    path = os.fsdecode(error.filename)
    if error.filename2 is not None:
        path += f" -> {os.fsdecode(error.filename2)}"
    return f"{path}: {cause}"


def _fail(line: str, status: int) -> int:
    """Print one line on stderr; return the exit status."""
    print(line, file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``jaxnet`` command; returns the exit status (see the module docstring)."""
    with _interrupt_exits():
        args = _parser().parse_args(argv)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with warnings.catch_warnings(), _quiet_absl():
            warnings.showwarning = _warning_line
            return _run(args)


@contextlib.contextmanager
def _interrupt_exits() -> Iterator[None]:
    """Ctrl-C outside training ends the command at once: the line ``jaxnet: interrupted``,
    exit 130, whatever it was doing (importing JAX, compiling, reading data).

    Python's own handler raises KeyboardInterrupt wherever the main thread is, and during
    JAX's first second that is inside a C++ callback: the exception is swallowed ("Exception
    ignored in ... _xla_gc_callback") and the run goes on, or it aborts the process with a
    traceback. Nothing is at stake before training (and every file of a run folder is written
    atomically), so this handler writes the line and leaves. ``fit`` puts its own handler in
    place while it trains (the first Ctrl-C finishes the epoch and saves, a second raises)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum: int, frame: Any) -> None:
        del signum, frame
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.write(sys.stderr.fileno(), b"jaxnet: interrupted\n")
        os._exit(INTERRUPTED)

    previous = signal.signal(signal.SIGINT, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _warning_line(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """A warning (a damaged checkpoint passed over on resume) as one line on stderr."""
    print(f"jaxnet: warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def _quiet_absl() -> Iterator[None]:
    """Orbax logs the errors of its writer threads with tracebacks (absl); the one line that
    :func:`main` prints says what failed, so they are kept off stderr meanwhile."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        absl.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    """The command of ``args``, its errors as one line each with their exit status."""
    from jaxnet.train import CheckpointWarning, NonFiniteError

    warnings.simplefilter("always", CheckpointWarning)  # said on stderr, never an error
    try:
        return _COMMANDS[args.command](args)
    except NonFiniteError as error:
        return _fail(f"jaxnet: {error}", RUN_ERROR)
    except (ValueError, TypeError) as error:  # CheckpointError is a ValueError
        return _fail(f"jaxnet: error: {error}", USAGE_ERROR)
    except ImportError as error:  # an optional extra that is not installed; the message names it
        return _fail(f"jaxnet: error: {error}", USAGE_ERROR)
    except OSError as error:
        if (
            isinstance(error, FileNotFoundError) and error.errno is None
        ):  # "run folder ... does not exist"
            return _fail(f"jaxnet: error: {error}", USAGE_ERROR)
        return _fail(f"jaxnet: error: {_os_error_line(error)}", IO_ERROR)
    except KeyboardInterrupt:
        return _fail("jaxnet: interrupted", INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
