"""docs/api.md lists every public name of jaxnet and is what ``make_api_reference`` writes."""

from __future__ import annotations

import importlib
import re

import pytest

from experiments import make_api_reference as api

REGENERATE = "regenerate it: python -m experiments.make_api_reference"


def _documented() -> set[str]:
    return set(re.findall(r"^### (\S+)$", api.API_MD.read_text(), flags=re.MULTILINE))


def _public() -> list[str]:
    return [
        f"{name}.{attr}"
        for name in api.MODULES
        for attr in api.public_names(importlib.import_module(name))
    ]


@pytest.mark.parametrize("module", api.MODULES)
def test_every_public_name_is_in_api_md(module: str) -> None:
    exported = api.public_names(importlib.import_module(module))
    assert exported, f"{module} exports nothing"
    missing = [f"{module}.{name}" for name in exported if f"{module}.{name}" not in _documented()]
    assert not missing, f"docs/api.md misses {missing}; {REGENERATE}"


def test_api_md_lists_only_public_names() -> None:
    extra = sorted(_documented() - set(_public()))
    assert not extra, (
        f"docs/api.md documents names that are no longer public: {extra}; {REGENERATE}"
    )


def test_api_md_is_up_to_date() -> None:
    assert api.API_MD.read_text() == api.render(), f"docs/api.md is stale; {REGENERATE}"


def test_all_is_used_when_present_and_module_definitions_otherwise() -> None:
    nn = importlib.import_module("jaxnet.nn")
    assert api.public_names(nn) == list(nn.__all__)
    recipes = importlib.import_module("jaxnet.recipes")
    names = api.public_names(recipes)
    assert {"mlp", "build", "RECIPES", "Recipe"} <= set(names)
    assert not {"Layer", "optax", "serial", "annotations"} & set(names)  # imported, not defined


def test_signatures_are_read_from_the_source() -> None:
    nn = importlib.import_module("jaxnet.nn")
    signature, summary = api.describe(nn, "Dense")
    assert signature.startswith("Dense(features, *, use_bias=True, w_init=LECUN_NORMAL")
    assert " at 0x" not in signature
    assert summary
    assert api.describe(nn, "Sigmoid")[0] == "Sigmoid: Layer"
    jn = importlib.import_module("jaxnet")
    assert api.describe(jn, "Params") == (
        "Params = dict[str, Any]",
        "Trainable parameters: a nested dict of arrays with readable string keys.",
    )


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(api, "API_MD", tmp_path / "api.md")
    monkeypatch.setattr(api, "ROOT", tmp_path)
    assert api.main(["--check"]) == 1
    assert api.main([]) == 0
    assert api.main(["--check"]) == 0
    assert "api.md is up to date" in capsys.readouterr().out
