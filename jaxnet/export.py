"""Export a trained model so that serving needs neither jaxnet nor Python model code.

:func:`export` writes three files into one folder:

- ``forward.jax``: the forward pass on *raw* inputs, the preprocessing fitted on the
  training data included and the parameters baked in as constants, serialized with
  `jax.export` for any batch size. Calling it needs only ``jax`` (and ``flatbuffers``)::

      import jax
      forward = jax.jit(jax.export.deserialize(open("forward.jax", "rb").read()).call)
      logits = forward(x)  # x: raw float32 inputs of shape (batch, *feature_shape)

  (``jax.jit`` compiles the call once per input shape; without it every call is traced
  again, about 1.7x slower for small batches: see docs/benchmarks.md.)

  A model whose inputs are a tuple or dict of arrays (a :func:`jaxnet.graph` net trained
  on ``jn.data.from_arrays({"left": ..., "right": ...}, y)``) takes the same tuple or dict
  of raw arrays, as its ``predict`` does: ``forward({"left": l, "right": r})``. All parts
  share one symbolic batch dimension (any batch size, the same for every part), each part
  keeps its dtype (``int32`` for token ids) and goes through its own preprocessing. A
  tuple must be passed as a tuple (not a list): ``jax.export`` checks the tree's structure.

- ``params.safetensors``: the parameters, layer state and standardization, named by their
  checkpoint paths (``params/dense_0/w``, ``state/batch_norm_0/mean``,
  ``preprocessing/mean``), for PyTorch and other tools. For a tuple or dict of inputs each
  standardized part is named by its path in the inputs, joined with ``/`` as checkpoint
  paths are (dict keys, tuple indices): ``preprocessing/left/mean``,
  ``preprocessing/left/std`` for the key ``"left"``, ``preprocessing/0/mean`` for the first
  part of a tuple. A part that is not standardized (token ids, ``standardize=False``) has
  no tensors, as a single input has none then.
- ``signature.json``: what goes in and comes out (shapes with ``null`` for the batch, dtypes,
  what the outputs mean, the class names), the platforms, the versions, and until when JAX
  promises to read ``forward.jax`` (see :data:`COMPATIBILITY`). One input array is
  ``"input": {"shape": [null, 4], "dtype": "float32"}``; a tuple or dict of inputs is
  instead ``"inputs"``, the same tree as JSON (a list for a tuple, an object with the same
  keys for a dict) of such ``{"shape", "dtype"}`` entries, e.g. ``"inputs": {"left":
  {"shape": [null, 5], "dtype": "float32"}, "ids": {"shape": [null, 7], "dtype":
  "int32"}}``. An entry is a leaf when its ``dtype`` is a string. Every ``null`` stands for
  the one batch size that all parts share.

Each file is written atomically (:mod:`jaxnet.atomic`), after all three are computed.
"""

from __future__ import annotations

import calendar
import datetime
import json
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jaxlib
import numpy as np
import safetensors.numpy
from jax import export as jax_export

from jaxnet import atomic
from jaxnet.data.preprocessing import Preprocessing, TreePreprocessing
from jaxnet.data.trees import is_tree, ordered_like, structure, tree_map
from jaxnet.runs.load import LoadedRun, load
from jaxnet.runs.model import Model
from jaxnet.runs.storage import leaves_by_path
from jaxnet.version import __version__

FORMAT = "jaxnet.export/1"
"""The ``format`` of signature.json and of the safetensors metadata this version writes."""

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
"""The platforms `jax.export` lowers for; any of them works on a machine without it."""

FORWARD, SIGNATURE, PARAMS = "forward.jax", "signature.json", "params.safetensors"

# jax.export's promise, from JAX's documentation (docs/export/export.md, "Compatibility
# guarantees"; https://docs.jax.dev/en/latest/export/export.html#compatibility-guarantees):
# an artifact can be compiled and run by a JAX runtime built up to 6 months after the one
# that exported it ("6 months backward compatibility") and up to 3 weeks before it ("3 weeks
# forward compatibility"). What counts is when the jaxlib releases were built, not when the
# export runs; this jaxlib was built on or before today, so today + 6 months is the latest
# the promise can reach, and it holds exactly when exporting with a freshly released jaxlib.
COMPATIBILITY_MONTHS = 6
"""Months after the export during which JAX promises to read it (JAX's docs, above)."""

COMPATIBILITY = (
    "jax.export promises that a JAX runtime (jaxlib) built up to 6 months after the exporting "
    "jaxlib, or up to 3 weeks before it, reads this artifact; readable_until counts from the "
    "export date (the exporting jaxlib may be older)"
)
"""The rule behind signature.json's ``readable_until``, as written there."""

# The NumPy dtypes safetensors stores (its error message lists them); not complex128, int4.
_SAFETENSORS_DTYPES = frozenset(
    {"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}
    | {"float16", "bfloat16", "float32", "float64", "complex64"}
    | {"float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz"}
)


class Exported(NamedTuple):
    """The files :func:`export` wrote.

    Attributes:
      out_dir: the folder.
      forward: ``forward.jax``, the serialized `jax.export.Exported`.
      signature: ``signature.json``.
      params: ``params.safetensors``.
    """

    out_dir: pathlib.Path
    forward: pathlib.Path
    signature: pathlib.Path
    params: pathlib.Path


def export(
    source: str | os.PathLike[str] | Model | LoadedRun,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    platforms: Sequence[str] = ("cpu",),
    step: int | None = None,
    which: str = "latest",
) -> Exported:
    """Write a model's forward pass, weights and signature for serving without jaxnet.

    The forward pass ``forward.jax`` takes raw inputs of shape ``(batch, *feature_shape)``
    for any batch size, applies the preprocessing and the net in evaluation mode, and returns
    the raw outputs (logits, values), exactly as :meth:`jaxnet.train.Model.predict_outputs`.
    A model of a tuple or dict of inputs (its preprocessing a ``TreePreprocessing``) takes
    the same tuple or dict of raw arrays, every part with the same symbolic batch size; see
    the module docstring for how its signature.json and safetensors names describe it.

    Args:
      source: a run folder (its checkpoint is restored with :func:`jaxnet.runs.load`), a
        :class:`jaxnet.train.LoadedRun`, or a :class:`jaxnet.train.Model`.
      out_dir: the folder to write; default ``<run folder>/export``. Required for a
        :class:`~jaxnet.train.Model`. Files of an earlier export there are replaced.
      platforms: what to lower for, from :data:`PLATFORMS`; several make one artifact that
        runs on each. Lowering needs no such device here: ``("cpu", "cuda")`` works on a
        laptop.
      step: the checkpoint of a run folder to export; default by ``which``.
      which: ``"latest"`` or ``"best"`` checkpoint of a run folder.

    Returns:
      The paths written, as :class:`Exported`.

    Raises:
      FileNotFoundError: if the run folder or its checkpoints are missing.
      NotADirectoryError: if ``out_dir`` is a file.
      ValueError: for an unknown, repeated or missing platform, a missing ``out_dir``,
        ``step``/``which`` with a source that is not a run folder, a net that returns more
        than one array, or two input parts whose safetensors names are the same (dict keys
        holding ``/``, such as ``"a/b"`` beside ``{"a": {"b": ...}}``).
      TypeError: for ``platforms`` given as one string, or a parameter whose dtype
        safetensors cannot store (a typed PRNG key, complex128). ``bfloat16`` and float8
        leaves are stored as safetensors' BF16 and F8 types.

    Example:
      >>> import jax, numpy as np, tempfile, jaxnet as jn
      >>> net = jn.nn.Dense(2)
      >>> _, params, state = net.init(jax.random.key(0), (None, 3))
      >>> model = jn.train.Model(net, params, state, jn.data.Preprocessing((3,)), "logits")
      >>> files = jn.export(model, tempfile.mkdtemp())
      >>> sorted(p.name for p in files.out_dir.iterdir())
      ['forward.jax', 'params.safetensors', 'signature.json']
      >>> forward = jax.export.deserialize(files.forward.read_bytes())
      >>> forward.call(np.ones((5, 3), np.float32)).shape
      (5, 2)
    """
    platforms = _check_platforms(platforms)
    model, run, out = _resolve(source, out_dir, step, which)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"export: out_dir {str(out)!r} is a file, not a folder")
    weights = _safetensors_bytes(model)
    forward = _lower(model, platforms)
    program = bytes(forward.serialize())  # needs the flatbuffers package
    signature = _signature(model, run, forward)
    atomic.make_folder(out)
    files = Exported(out, out / FORWARD, out / SIGNATURE, out / PARAMS)
    atomic.write_bytes(files.forward, program)
    atomic.write_bytes(files.params, weights)
    atomic.write_text(files.signature, json.dumps(signature, indent=2) + "\n")
    return files


def _check_platforms(platforms: Sequence[str]) -> tuple[str, ...]:
    """``platforms`` as a tuple, once each checked against :data:`PLATFORMS`."""
    if isinstance(platforms, str):
        raise TypeError(
            f"export: platforms must be a sequence of names, got the string {platforms!r}; "
            f"write ({platforms!r},)"
        )
    names = tuple(platforms)
    for name in names:
        if name not in PLATFORMS:
            raise ValueError(
                f"export: unknown platform {name!r}; the platforms are {', '.join(PLATFORMS)}"
            )
    if not names or len(set(names)) != len(names):
        raise ValueError(f"export: platforms must name each platform once, got {names!r}")
    return names


def _resolve(
    source: str | os.PathLike[str] | Model | LoadedRun,
    out_dir: str | os.PathLike[str] | None,
    step: int | None,
    which: str,
) -> tuple[Model, LoadedRun | None, pathlib.Path]:
    """The model, the run it came from (if any) and the output folder."""
    if isinstance(source, Model | LoadedRun):
        if step is not None or which != "latest":
            raise ValueError("export: step and which choose a checkpoint of a run folder only")
        if isinstance(source, LoadedRun):
            out = source.run_dir / "export" if out_dir is None else pathlib.Path(out_dir)
            return source.model, source, out
        if out_dir is None:
            raise ValueError("export: give out_dir to export a Model (only a run folder has one)")
        return source, None, pathlib.Path(out_dir)
    run = load(source, step=step, which=which)
    out = pathlib.Path(source) / "export" if out_dir is None else pathlib.Path(out_dir)
    return run.model, run, out


def _parts(model: Model) -> Any:
    """The model's per-input preprocessing: its one :class:`Preprocessing`, or the tuple or
    dict (maybe nested) of them of a :class:`TreePreprocessing`."""
    preprocessing = model.preprocessing
    return preprocessing.parts if isinstance(preprocessing, TreePreprocessing) else preprocessing


def _lower(model: Model, platforms: tuple[str, ...]) -> jax_export.Exported:
    """The model's forward pass on raw inputs, for any batch size, lowered for
    ``platforms``; the parameters are constants of the program.

    Every input part gets the same symbolic batch dimension (one ``symbolic_shape`` call,
    so one scope), so the parts must come with the same number of rows.

    Raises:
      ValueError: if the net returns more than one array.
    """
    parts = _parts(model)

    def forward(x: Any) -> jax.Array:
        return model.forward(ordered_like(x, parts))  # jax hands a dict back keys sorted

    (batch,) = jax_export.symbolic_shape("batch")
    spec = tree_map(lambda p: jax.ShapeDtypeStruct((batch, *p.feature_shape), p.dtype), parts)
    exported = jax_export.export(jax.jit(forward), platforms=platforms)(spec)
    if not jax.tree_util.treedef_is_leaf(exported.out_tree):
        out = jax.tree.unflatten(exported.out_tree, exported.out_avals)
        raise ValueError(
            f"export: the net returns {structure(out)}, not one array; export takes nets with "
            "a single output"
        )
    return exported


def _safetensors_bytes(model: Model) -> bytes:
    """The parameters, layer state and standardization as a safetensors file, each tensor
    named by its checkpoint path (``params/dense_0/w``); each standardized input part by its
    path in the inputs (``preprocessing/left/mean``, ``preprocessing/0/std``)."""
    tensors = {}
    for path, leaf in leaves_by_path({"params": model.params, "state": model.state}).items():
        dtype = leaf.dtype if hasattr(leaf, "dtype") else np.asarray(leaf).dtype
        if str(dtype) not in _SAFETENSORS_DTYPES:
            raise TypeError(f"export: {path} has dtype {dtype}, which safetensors cannot store")
        tensors[path] = np.asarray(jax.device_get(leaf), order="C")
    for path, part in _part_paths(_parts(model), "preprocessing"):
        if part.mean is None or part.std is None:
            continue  # not standardized: nothing to store
        for name, value in (("mean", part.mean), ("std", part.std)):
            if f"{path}/{name}" in tensors:
                raise ValueError(
                    f"export: two input parts are both named {path!r} in {PARAMS}; rename a "
                    "dict key ('/' joins the keys of nested parts)"
                )
            tensors[f"{path}/{name}"] = np.asarray(value, np.float32, order="C")
    return safetensors.numpy.save(tensors, metadata={"format": FORMAT, "jaxnet": __version__})


def _part_paths(parts: Any, prefix: str) -> list[tuple[str, Preprocessing]]:
    """``(path, preprocessing)`` of every input part, the path joining dict keys and tuple
    indices with "/" as checkpoint paths do (:func:`jaxnet.train.tree_paths`); one input is
    ``prefix`` itself.

    Example:
      >>> p = Preprocessing((2,))
      >>> [path for path, _ in _part_paths({"left": p, "pair": (p, p)}, "preprocessing")]
      ['preprocessing/left', 'preprocessing/pair/0', 'preprocessing/pair/1']
    """
    if isinstance(parts, Mapping):
        items: Any = parts.items()
    elif is_tree(parts):
        items = enumerate(parts)
    else:
        return [(prefix, parts)]
    return [found for key, part in items for found in _part_paths(part, f"{prefix}/{key}")]


def _signature(model: Model, run: LoadedRun | None, forward: jax_export.Exported) -> dict[str, Any]:
    """signature.json: inputs, outputs, names, platforms, versions and dates."""
    description: Mapping[str, Any] = run.description if run else {}
    parts = _parts(model)
    (out,) = forward.out_avals  # _lower checked that the net returns one array
    today = datetime.datetime.now(datetime.UTC)
    # one array: "input" as ever; a tuple or dict: "inputs", the same tree as JSON
    key = "inputs" if isinstance(model.preprocessing, TreePreprocessing) else "input"
    return {
        "format": FORMAT,
        "task": description.get("task"),
        key: _json_inputs(parts),
        "output": {"shape": _shape(out.shape), "dtype": str(out.dtype), "kind": model.outputs},
        "class_names": None if model.class_names is None else list(model.class_names),
        "target_names": description.get("target_names"),
        "step": run.step if run else None,
        "platforms": list(forward.platforms),
        "created": today.isoformat(timespec="seconds"),
        "readable_until": _add_months(today.date(), COMPATIBILITY_MONTHS).isoformat(),
        "compatibility": COMPATIBILITY,
        "jaxnet_version": __version__,
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "files": {"forward": FORWARD, "params": PARAMS},
        "usage": (
            "pip install jax flatbuffers; "  # jax.export.deserialize needs flatbuffers
            f"import jax; forward = jax.jit(jax.export.deserialize(open({FORWARD!r}, "
            f"'rb').read()).call); y = forward(x)  # x: {_describe_inputs(model)}; "
            f"y: {model.outputs}"
        ),
    }


def _json_inputs(parts: Any) -> Any:
    """The inputs for signature.json: ``{"shape": [null, ...], "dtype": ...}`` for one
    array; a list of such entries for a tuple, an object with the same keys for a dict."""
    if isinstance(parts, Mapping):
        return {key: _json_inputs(part) for key, part in parts.items()}
    if is_tree(parts):
        return [_json_inputs(part) for part in parts]
    return {"shape": [None, *parts.feature_shape], "dtype": parts.dtype}


def _describe_inputs(model: Model) -> str:
    """What ``forward`` takes, for signature.json's ``usage``: ``raw float32 inputs of shape
    (batch, 4)``, or ``raw inputs {'left': float32 (batch, 5), 'ids': int32 (batch, 7)}, the
    same batch for every part``."""
    parts = _parts(model)
    if not isinstance(model.preprocessing, TreePreprocessing):
        return f"raw {parts.dtype} inputs of shape {_batched(parts)}"
    return f"raw inputs {_describe_tree(parts)}, the same batch for every part"


def _describe_tree(parts: Any) -> str:
    if isinstance(parts, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe_tree(p)}" for k, p in parts.items()) + "}"
    if is_tree(parts):
        inner = ", ".join(_describe_tree(p) for p in parts)
        return f"({inner}{',' if len(parts) == 1 else ''})"  # a tuple, not a list
    return f"{parts.dtype} {_batched(parts)}"


def _batched(part: Preprocessing) -> str:
    """``(batch, 5)``: one part's shape with the batch named."""
    return f"(batch, {', '.join(map(str, part.feature_shape))})"


def _shape(shape: Sequence[Any]) -> list[int | None]:
    """A shape for JSON: ``None`` for the symbolic batch dimension."""
    return [None if jax_export.is_symbolic_dim(d) else int(d) for d in shape]


def _add_months(day: datetime.date, months: int) -> datetime.date:
    """``day`` moved ``months`` calendar months on, kept within the month.

    Example:
      >>> _add_months(datetime.date(2026, 8, 31), 6)
      datetime.date(2027, 2, 28)
    """
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return datetime.date(year, month, min(day.day, last))
