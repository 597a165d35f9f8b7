"""Named datasets: ``load(name)`` and ``names()``."""

import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from types import MappingProxyType

from . import embedded, sequences, synthetic
from .dataset import Dataset, Source, from_arrays

# Each loader maps a seed to the unsplit arrays; the seed only matters for synthetic sets.
_LOADERS: Mapping[str, Callable[[int], Source]] = MappingProxyType(
    {
        "breast_cancer": embedded.breast_cancer,
        "digits": embedded.digits,
        "iris": embedded.iris,
        "spirals": synthetic.spirals,
        "temperature": synthetic.temperature,
        "xor": synthetic.xor,
    }
)


# Sequence sets are built as Datasets directly (time-ordered split, integer tokens).
_SEQUENCE_LOADERS: Mapping[str, Callable[..., Dataset]] = MappingProxyType(
    {
        "reverse_digits": functools.partial(sequences.digit_sequences, task="reverse"),
        "sort_digits": functools.partial(sequences.digit_sequences, task="sort"),
        "temperature_forecast": sequences.temperature_forecast,
    }
)


def names() -> tuple[str, ...]:
    """The names ``load`` knows, sorted.

    Returns:
      A tuple of dataset names.

    Example:
      >>> names()  # doctest: +NORMALIZE_WHITESPACE
      ('breast_cancer', 'digits', 'iris', 'reverse_digits', 'sort_digits', 'spirals',
       'temperature', 'temperature_forecast', 'xor')
    """
    return tuple(sorted([*_LOADERS, *_SEQUENCE_LOADERS]))


def load(
    name: str,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    standardize: bool = True,
) -> Dataset:
    """Load a named dataset, split into train, validation and test by ``seed``, features
    standardized.

    The split and the standardization are those of ``from_arrays``: ``ceil(n * test_fraction)``
    test samples and ``ceil(n * val_fraction)`` validation samples, stratified by class for
    classification (the sequence sets split in time order: train, validation, test); the
    feature mean and std are fitted on the training part only and stored on the result.
    Regression targets stay in their original units. Nothing is downloaded.

    Args:
      name: one of ``names()``; dashes may stand for underscores (``"breast-cancer"``).
      seed: seeds the split and, for synthetic sets, the data; the same seed gives identical
        arrays.
      test_fraction: the share of samples held out for testing, in the open interval (0, 1).
      val_fraction: the share of samples held out for validation (what ``fit`` picks the best
        checkpoint and stops early on), in [0, 1 - test_fraction); 0 gives none.
      standardize: whether to standardize the features to zero mean and unit variance (the
        sequence sets of ``jaxnet.data.sequences`` ignore it: token ids are never standardized,
        forecast windows always are).

    Returns:
      The ``Dataset``.

    Raises:
      TypeError: if ``name`` is not a string.
      ValueError: if ``name`` is unknown (the message lists the known names), ``test_fraction``
        is not in (0, 1), or ``val_fraction`` not in [0, 1 - test_fraction).

    Example:
      >>> ds = load("iris", seed=0)
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
      ((120, 4), (30, 4), 3)
      >>> load("iris", val_fraction=0.2).num_val
      30
    """
    key = _canonical_name(name)
    origin: dict[str, object] = {"name": key, "seed": seed, "test_fraction": test_fraction}
    if val_fraction:  # older run folders have no val_fraction in their origin
        origin["val_fraction"] = val_fraction
    if key in _SEQUENCE_LOADERS:  # split in time order / token ids: see jaxnet.data.sequences
        made = _SEQUENCE_LOADERS[key](seed, test_fraction=test_fraction, val_fraction=val_fraction)
        return dataclasses.replace(made, origin=MappingProxyType(origin))
    origin["standardize"] = standardize
    source = _LOADERS[key](seed)
    dataset = from_arrays(
        source.x,
        source.y,
        task=source.task,
        num_classes=source.num_classes,
        name=key,
        seed=seed,
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        standardize=standardize,
    )
    return dataclasses.replace(
        dataset,
        target_names=source.target_names,
        feature_names=source.feature_names,
        image_shape=source.image_shape,
        origin=MappingProxyType(origin),
    )


def _canonical_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r} of type {type(name).__name__}")
    key = name.replace("-", "_")
    if key not in names():
        close = difflib.get_close_matches(key, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown dataset name {name!r}; known names: {', '.join(names())}{hint}")
    return key
