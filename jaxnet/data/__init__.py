"""Embedded datasets as NumPy train/test splits: ``jaxnet.data.load("digits")``.

scikit-learn's digits, iris and breast cancer ship inside scikit-learn; xor, spirals and the
seasonal temperature curve are generated from a seed. Nothing is downloaded.

Data knows no layers: this package imports only the ground floor (:mod:`jaxnet.shapes`), never
``core``, ``nn``, ``optim``, ``runs`` or ``train``, so reading data costs no model code
(docs/concepts.md, "Where things live").

Example:
  >>> import jaxnet.data
  >>> ds = jaxnet.data.load("digits")
  >>> ds.x_train.shape, ds.y_train.dtype, ds.num_classes, ds.image_shape
  ((1437, 64), dtype('int32'), 10, (8, 8, 1))
"""

from .dataset import TASKS, Dataset, from_arrays
from .ondisk import OnDisk
from .preprocessing import Preprocessing, TreePreprocessing
from .registry import load, names
from .sequences import digit_sequences, persistence_mse, temperature_forecast
from .stream import Stream, StreamError, stream
from .synthetic import temperature_series
from .user_file import from_file

__all__ = [
    "TASKS",
    "Dataset",
    "OnDisk",
    "Preprocessing",
    "Stream",
    "StreamError",
    "TreePreprocessing",
    "digit_sequences",
    "from_arrays",
    "from_file",
    "load",
    "names",
    "persistence_mse",
    "stream",
    "temperature_forecast",
    "temperature_series",
]
