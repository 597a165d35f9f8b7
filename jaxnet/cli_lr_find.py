"""``jaxnet lr-find [RECIPE]``: the learning-rate finder on a recipe's net and data.

One compiled range test (:func:`jaxnet.train.lr_find`) with the recipe's optimizer, its rate
growing from ``--min-lr`` to ``--max-lr`` over ``--steps`` steps until the loss diverges; it
prints the suggested rate and draws the curve into ``--out`` (a PNG). The suggestion is a
starting point for ``jaxnet train RECIPE --lr ...``.
"""

from __future__ import annotations

import argparse
from typing import Any

OK = 0


def add_command(commands: Any, default_recipe: str) -> None:
    """Add ``lr-find`` to the ``jaxnet`` subparsers."""
    finder = commands.add_parser("lr-find", help="find a learning rate for a recipe")
    finder.add_argument("recipe", nargs="?", help=f"default: {default_recipe}")
    finder.add_argument("--steps", type=int, default=100, help="steps at most (default 100)")
    finder.add_argument("--min-lr", type=float, default=1e-7, help="the first rate (1e-7)")
    finder.add_argument("--max-lr", type=float, default=10.0, help="the last rate (10)")
    finder.add_argument("--batch-size", type=int, help="examples per step (the recipe's)")
    finder.add_argument("--seed", type=int, default=0, help="seeds the init and the shuffles")
    finder.add_argument("--out", metavar="FILE.png", help="the plot (default lr-find-RECIPE.png)")
    finder.set_defaults(default_recipe=default_recipe)


def lr_find(args: argparse.Namespace) -> int:
    """Run the range test and report it in one line."""
    from jaxnet import recipes, train

    _check_flags(args)
    recipe = args.recipe or args.default_recipe
    settings = {"seed": args.seed}
    if args.batch_size is not None:
        settings["batch_size"] = args.batch_size
    job = recipes.build(recipes.make_config(recipe, **settings))
    out = args.out or f"lr-find-{recipe}.png"
    if not str(out).lower().endswith(".png"):
        raise ValueError(f"--out {out}: the plot is a PNG file; name it FILE.png")
    result = train.lr_find(
        job.net,
        job.data,
        loss=job.loss,
        optimizer=job.config["optimizer"],
        min_lr=args.min_lr,
        max_lr=args.max_lr,
        steps=args.steps,
        batch_size=job.config["batch_size"],
        seed=args.seed,
    )
    from jaxnet.plot import plot_lr_find

    plot_lr_find(result, out, title=f"{recipe}: learning-rate finder")
    how = "stopped where the loss diverged" if result.diverged else "did not diverge"
    print(
        f"{recipe}: suggested learning rate {result.suggestion:.2g} (the steepest descent of "
        f"the smoothed loss; its lowest at {result.lowest:.2g}); {len(result.losses)} steps "
        f"of {job.config['optimizer']} from {args.min_lr:g}, {how}; plot: {out}"
    )
    return OK


def _check_flags(args: argparse.Namespace) -> None:
    """The range and the step count, by their flags' names, before anything is loaded."""
    if not 0 < args.min_lr < args.max_lr < float("inf"):
        raise ValueError(
            f"--min-lr and --max-lr need 0 < MIN < MAX, got --min-lr {args.min_lr:g} "
            f"--max-lr {args.max_lr:g}"
        )
    if args.steps < 2:
        raise ValueError(f"--steps must be an int >= 2, got {args.steps}")
