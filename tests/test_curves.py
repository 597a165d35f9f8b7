"""curves.png keeps its words inside the canvas and names the run (issue 25, item 7).

A regression run's plot was one 450×350 panel whose y labels were cut off; every panel now has
the same margins in pixels, checked with matplotlib's own tight bounding box.
"""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import jaxnet as jn
from jaxnet.plot import curves_figure
from jaxnet.train.fit import run_title


def _history(metrics: dict[str, float], epochs: int = 12) -> list[dict[str, float]]:
    """Rows whose values span decades, as a regression loss on raw targets does."""
    return [
        {"epoch": e, "step": 10 * e}
        | {
            f"{split}_{name}": scale / e**2
            for split in ("train", "val", "test")
            for name, scale in metrics.items()
        }
        for e in range(1, epochs + 1)
    ]


@pytest.mark.parametrize(
    "metrics",
    [{"loss": 3.0e5}, {"loss": 2.5, "accuracy": 0.9}],
    ids=["regression", "classification"],
)
def test_every_label_lies_inside_the_canvas(metrics: dict[str, float]) -> None:
    fig = curves_figure(_history(metrics), title="digits-mlp on diabetes.csv")
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    inside, canvas = fig.get_tightbbox(renderer), fig.bbox
    assert (canvas.width, canvas.height) == (450 * len(metrics), 350)
    assert inside.x0 >= 0 and inside.y0 >= 0
    assert inside.x1 <= canvas.width / fig.dpi and inside.y1 <= canvas.height / fig.dpi


def test_a_file_run_is_titled_with_its_recipe_and_file(tmp_path) -> None:
    data_file = tmp_path / "diabetes.csv"
    data_file.write_text("a,b,y\n" + "".join(f"{i % 7},{i % 5},{i * 1.5}\n" for i in range(40)))
    data = jn.data.from_file(data_file)
    assert run_title({"recipe": "digits-mlp"}, data) == "digits-mlp on diabetes.csv"
    assert run_title(None, data) == "diabetes.csv"
    assert run_title({"recipe": "digits-mlp"}, jn.data.load("digits")) == "digits-mlp"
