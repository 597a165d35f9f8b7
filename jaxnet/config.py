"""A net as JSON and back: :func:`to_config` and :func:`from_config`.

Every layer built by jaxnet's constructors carries a :class:`jaxnet.describe.Spec` (its
constructor's registered name and arguments), so a whole net turns into a JSON object::

    {"format": "jaxnet.model/1", "jaxnet_version": "0.1.0",
     "net": {"type": "serial", "arguments": {"layers": [
         {"type": "nn.Dense", "arguments": {"features": 9}}, {"type": "nn.Sigmoid"}]}}}

Arguments are JSON values, lists (read back as tuples), dicts with string keys (a graph's
nodes, written as ``{"dict": {...}}``), nested layers and cells, and functions of ``jax.nn``,
``jax.numpy`` and ``jax.nn.initializers`` written as ``{"function": "jax.nn.relu"}``.
Arguments left at their default are not written, so a default initializer needs no name, and
``from_config(to_config(net))`` initializes the same parameters from the same key. Loading
builds each layer by calling its registered constructor: a config never holds code, and no
module is imported because a file names it.
"""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

import jaxnet.graph  # registers graph and each
import jaxnet.nn  # noqa: F401  (registers the built-in layers)
from jaxnet import describe
from jaxnet.core import Layer, _child_names

FORMAT = "jaxnet.model/1"
"""The ``format`` of a config this version writes and reads."""

FUNCTION_MODULES = ("jax.nn", "jax.nn.initializers", "jax.numpy", "jax.lax", "jax.scipy.special")
"""Where function-valued arguments (activations, initializers) may come from."""

_HOW_TO_REGISTER = (
    "register it with jn.register_layer(name, layer), or register the function that builds it "
    "(@jn.register_layer(name) above its def), before to_config and before loading"
)


class ConfigError(ValueError):
    """A net that cannot be written as a config, or a config that cannot be read; the message
    names the layer's path (``serial/dense_0``) or the place in the config
    (``net.arguments.layers[2]``)."""


def to_config(net: Layer) -> dict[str, Any]:
    """The JSON description of ``net``: every layer's constructor and arguments.

    Args:
      net: a layer built from jaxnet's constructors and registered layers.

    Returns:
      A dict of JSON values: ``format``, ``jaxnet_version`` and ``net``.

    Raises:
      ConfigError: for a layer built by hand and not registered, or an argument a config cannot
        hold (a lambda, an array); the message names the layer's path and says how to fix it.

    Example:
      >>> import jaxnet as jn
      >>> jn.to_config(jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid))["net"]
      {'type': 'serial', 'arguments': {'layers': [{'type': 'nn.Dense', 'arguments': {'features': 9}}, {'type': 'nn.Sigmoid'}]}}
    """  # noqa: E501
    from jaxnet.version import __version__

    if not isinstance(net, Layer):
        raise TypeError(f"to_config: net must be a jaxnet Layer, got {type(net).__name__}")
    return {"format": FORMAT, "jaxnet_version": __version__, "net": _encode_part(net, net.name)}


def from_config(config: Mapping[str, Any]) -> Layer:
    """The net a :func:`to_config` dict (or its parsed JSON) describes.

    Args:
      config: the dict, e.g. ``json.load`` of a run folder's ``model.json`` ``net`` entry's
        parent.

    Returns:
      The net, with the same parameter tree and outputs as the one described.

    Raises:
      ConfigError: for another format, a missing or malformed ``jaxnet_version``, an unknown
        key, an unknown layer (not registered in this process), an unknown or bad argument;
        the message names the place in the config.

    Example:
      >>> import jax, jaxnet as jn
      >>> net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4))
      >>> again = jn.from_config(jn.to_config(net))
      >>> again.init(jax.random.key(0), (1, 8))[0]
      (1, 4)
    """
    if not isinstance(config, Mapping):
        raise ConfigError(f"config: expected a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise ConfigError(
            f"config: format must be {FORMAT!r}, got {config.get('format')!r}"
            + ("" if "format" in config else " (is this a to_config dict?)")
        )
    _check_header(config)
    try:
        net = _decode(config["net"], "net")
    except RecursionError:
        raise ConfigError("net: nested too deeply to be a net") from None
    if not isinstance(net, Layer):
        raise ConfigError(f"net: describes a {type(net).__name__}, not a layer")
    return net


def _check_header(config: Mapping[str, Any]) -> None:
    """The keys beside ``net``: known ones only, and a version string ``X.Y.Z``.

    Within one :data:`FORMAT` the meaning of a config never changes (a constructor's defaults,
    which a config leaves out, included); a change that would bumps the format. So a config of
    another jaxnet version with this format loads.
    """
    unknown = sorted(set(config) - {"format", "jaxnet_version", "net"})
    if unknown:
        raise ConfigError(f"config: unexpected key {unknown[0]!r}")
    if "net" not in config:
        raise ConfigError("config: has no 'net' entry")
    version = config.get("jaxnet_version")
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) < 2 or not all(part.isdigit() for part in parts[:2]):
        raise ConfigError(
            f"config: jaxnet_version must be a version such as '0.1.0', got {version!r}"
        )


# ------------------------------------------------------------------------------------ writing


def _encode_part(part: Any, path: str) -> dict[str, Any]:
    """A layer (or cell) as ``{"type": ..., "arguments": {...}}``."""
    spec = getattr(part, "spec", None)
    if not isinstance(spec, describe.Spec):
        name = getattr(part, "name", "?")
        raise ConfigError(
            f"to_config: {path} is a layer built by hand (kind {name!r}), which a config cannot "
            f"describe; {_HOW_TO_REGISTER}"
        )
    entry: dict[str, Any] = {"type": spec.constructor}
    arguments = {
        name: _encode(value, _argument_path(path, spec.constructor, name, value), name)
        for name, value in spec.arguments.items()
    }
    if arguments:
        entry["arguments"] = arguments
    return entry


def _argument_path(path: str, constructor: str, argument: str, value: Any) -> str | tuple[str, ...]:
    """Where an argument's layers sit in the net, as error messages write it: children by
    their names in the tree (``serial/dense_0``); the layer inside ``named`` or ``remat`` at its
    path."""
    if isinstance(value, tuple) and value and all(isinstance(v, Layer) for v in value):
        return tuple(f"{path}/{name}" for name in _child_names(value, path))
    if isinstance(value, Mapping):  # a graph's nodes: each layer at its node's path
        return path
    if isinstance(value, Layer):
        if constructor in ("named", "remat"):  # the layer inside keeps the wrapper's path
            return path
        return f"{path}/{_child_names((value,), path)[0]}"
    return f"{path}/{argument}"


def _encode(value: Any, path: str | tuple[str, ...], argument: str) -> Any:
    """One argument as a JSON value; ``path`` names it in errors."""
    if "spec" in getattr(value, "_fields", ()) or isinstance(
        getattr(value, "spec", None), describe.Spec
    ):  # a layer, a cell, a named initializer
        assert isinstance(path, str)
        return _encode_part(value, path)
    if isinstance(value, tuple | list):
        paths = path if isinstance(path, tuple) else _element_paths(value, path)
        return [_encode(v, p, argument) for v, p in zip(value, paths, strict=True)]
    assert isinstance(path, str)
    if isinstance(value, Mapping):
        bad = [key for key in value if not isinstance(key, str)]
        if bad:
            raise ConfigError(
                f"to_config: {path}: argument {argument} has the key {bad[0]!r}; a config "
                "holds dicts with string keys only"
            )
        return {"dict": {key: _encode(v, f"{path}/{key}", argument) for key, v in value.items()}}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value)
    if callable(value):
        return {"function": _function_name(value, path, argument)}
    raise ConfigError(
        f"to_config: {path}: argument {argument} is of type {type(value).__name__}, which a "
        "config cannot hold (numbers, strings, booleans, None, tuples, dicts, layers and functions "
        "of jax.nn or jax.numpy can); pass it as one of those"
    )


def _element_paths(value: tuple[Any, ...] | list[Any], path: str) -> list[str]:
    """``path[i]`` for each element, except that the one layer of a graph's node
    ``(layer, takes)`` sits at the node's own path."""
    one_layer = sum(isinstance(v, Layer) for v in value) == 1
    return [
        path if one_layer and isinstance(v, Layer) else f"{path}[{i}]" for i, v in enumerate(value)
    ]


def _function_name(fn: Callable[..., Any], path: str, argument: str) -> str:
    """``"jax.nn.relu"``: the public name a function has in one of :data:`FUNCTION_MODULES`."""
    name = getattr(fn, "__name__", None)
    for module_name in FUNCTION_MODULES:
        module = importlib.import_module(module_name)
        if isinstance(name, str) and not isinstance(fn, type) and getattr(module, name, None) is fn:
            return f"{module_name}.{name}"
    hint = ""
    if argument.endswith("_init"):
        hint = (
            "; a configured initializer such as jax.nn.initializers.he_normal() is a closure "
            "without a name: use jn.nn.initializer('he_normal') instead, which a config can "
            "name, or "
        )
    raise ConfigError(
        f"to_config: {path}: argument {argument}={fn!r} is not a function of "
        f"{', '.join(FUNCTION_MODULES)}, so a config cannot name it{hint or '; '}"
        f"{_HOW_TO_REGISTER}"
    )


# ------------------------------------------------------------------------------------ reading


def _decode(value: Any, where: str) -> Any:
    """A JSON value back as an argument; ``where`` is its place in the config."""
    if isinstance(value, list):
        return tuple(_decode(v, f"{where}[{i}]") for i, v in enumerate(value))
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        if "type" in value:
            return _build(value, where)
        if set(value) == {"function"}:
            return _resolve_function(value["function"], where)
        if set(value) == {"dict"} and isinstance(value["dict"], Mapping):
            return {key: _decode(v, f"{where}.{key}") for key, v in value["dict"].items()}
    raise ConfigError(
        f"{where}: expected a JSON value, a list, a layer ({{'type': ...}}), a function "
        f"({{'function': ...}}) or a dict ({{'dict': {{...}}}}), got {json.dumps(value)[:80]}"
    )


def _build(entry: Mapping[str, Any], where: str) -> Any:
    """Call the registered constructor an entry names with its decoded arguments."""
    unknown = sorted(set(entry) - {"type", "arguments"})
    if unknown:
        raise ConfigError(f"{where}: unexpected key {unknown[0]!r} beside 'type' and 'arguments'")
    name = entry["type"]
    build = describe.constructor(name) if isinstance(name, str) else None
    if build is None:
        raise ConfigError(
            f"{where}.type: unknown layer {name!r}; a layer written by hand must be registered "
            "with jn.register_layer before its config is loaded"
        )
    arguments = entry.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise ConfigError(f"{where}.arguments: expected a JSON object, got {arguments!r}")
    args, kwargs = _call_arguments(build, name, arguments, f"{where}.arguments")
    try:
        return build(*args, **kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {name}: {error}") from None


def _call_arguments(
    build: Callable[..., Any], name: str, arguments: Mapping[str, Any], where: str
) -> tuple[list[Any], dict[str, Any]]:
    """Positional and keyword arguments for ``build``; a ``*layers`` parameter is spread."""
    parameters = inspect.signature(build).parameters
    extra = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    unknown = sorted(set(arguments) - set(parameters))
    if unknown and not extra:
        known = ", ".join(parameters) or "none"
        raise ConfigError(
            f"{where}: {name} has no argument {unknown[0]!r} (its arguments: {known})"
        )
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    spread = [p.kind for p in parameters.values()].count(inspect.Parameter.VAR_POSITIONAL) > 0
    for key, parameter in parameters.items():
        kind = parameter.kind
        if key not in arguments:
            if spread and kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                if parameter.default is inspect.Parameter.empty:
                    raise ConfigError(f"{where}: {name} needs the argument {key!r}")
                args.append(parameter.default)  # before *args, every one goes by position
            continue
        value = _decode(arguments[key], f"{where}.{key}")
        if kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value if isinstance(value, tuple) else (value,))
        elif kind is inspect.Parameter.POSITIONAL_ONLY or (
            spread and kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ):
            args.append(value)
        else:
            kwargs[key] = value
    for key in unknown:  # into the constructor's **kwargs
        kwargs[key] = _decode(arguments[key], f"{where}.{key}")
    return args, kwargs


def _resolve_function(name: Any, where: str) -> Callable[..., Any]:
    """The function ``"jax.nn.relu"`` names, from :data:`FUNCTION_MODULES` only."""
    module_name, _, attribute = str(name).rpartition(".")
    if module_name in FUNCTION_MODULES:
        fn = getattr(importlib.import_module(module_name), attribute, None)
        if callable(fn) and not isinstance(fn, type):
            return fn
    raise ConfigError(
        f"{where}.function: {name!r} is not a function of {', '.join(FUNCTION_MODULES)}"
    )
