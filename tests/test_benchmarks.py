"""The benchmark suite's command runs and writes its table and JSON (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.benchmarks import cases, report, suite
from experiments.benchmarks.__main__ import main


def test_quick_run_of_a_tiny_case_writes_table_and_json(
    tmp_path: Path, capsys, default_optimizations
) -> None:
    """The docs' benchmark check, compiled as a user's run is (XLA's default optimizations)."""
    argv = ["--cases", "tiny", "--impls", "jax,jaxnet", "--quick", "--repeats", "1"]
    results = main([*argv, "--out", str(tmp_path)])
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["machine"]["command"].startswith("python -m experiments.benchmarks")
    [case] = written["cases"]
    rows = {row["name"]: row for row in case["rows"]}
    assert set(rows) == {suite.BASELINE, "jaxnet"}
    assert set(rows["jaxnet"]["modes"]) == {"read", "noread", "fused", "fit"}
    assert set(rows[suite.BASELINE]["modes"]) == {"read", "noread", "fused"}
    assert rows[suite.BASELINE]["modes"]["noread"]["ratio"] == 1.0
    assert all(m["median"] > 0 for row in rows.values() for m in row["modes"].values())
    assert case["flops_per_step"] > 0 and rows["jaxnet"]["memory_source"] == "xla"
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| jaxnet | " in table and "(1.00×)" in table
    assert results["cases"][0]["case"] == "tiny"
    assert "| implementation |" in capsys.readouterr().out


def test_a_missing_peer_is_skipped_with_a_printed_line() -> None:
    absent = suite.Impl(
        "absent", "Absent", "no_such_package_for_jaxnet_tests", suite.IMPLS[0].build
    )
    lines: list[str] = []
    settings = suite.Settings(repeats=1, target=0.01, fit_epochs=1)
    results = suite.run([], [absent], settings, log=lines.append)
    assert lines == ["peers not installed, skipped: no_such_package_for_jaxnet_tests"]
    assert results["missing_peers"] == ["no_such_package_for_jaxnet_tests"]


def test_unknown_case_or_implementation_is_refused() -> None:
    with pytest.raises(SystemExit, match="unknown case 'huge' \\(known: small, wide, cnn, tiny\\)"):
        main(["--cases", "huge"])
    with pytest.raises(SystemExit, match="unknown implementation 'mxnet'"):
        main(["--impls", "mxnet"])
    with pytest.raises(ValueError, match="unknown case 'huge'"):
        cases.make("huge")


def test_the_results_section_replaces_only_the_text_between_its_markers(tmp_path: Path) -> None:
    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nintro\n\n{report.START}\nold\n{report.END}\n\n## Notes\n")
    results = {
        "machine": {
            "command": "python -m experiments.benchmarks",
            "cpu": "cpu",
            "cores": 2,
            "cores_usable": 2,
            "device": "cpu",
            "load_average": [1.0],
            "load_average_end": [1.0],
            "python": "3.11",
            "jax": "0",
            "jaxlib": "0",
            "optax": "0",
            "peers": {},
            "xla_flags": "",
            "date": "today",
        },
        "settings": {"repeats": 1, "target": 0.1},
        "seconds": 1.0,
        "missing_peers": [],
        "cases": [{"case": "cnn", "description": "d", "skipped": {"jaxnet": "no Conv"}}],
    }
    report.write_markdown(page, results)
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n\n" + report.START)
    assert text.endswith(report.END + "\n\n## Notes\n")
    assert "old" not in text and "Skipped: jaxnet: no Conv." in text


def test_the_carried_state_benchmark_runs_every_step_variant() -> None:
    from experiments.benchmarks import carried_state

    medians = carried_state.main(["--rounds", "1", "--steps", "2"])
    names = ("hand", "hand+step+key", "jaxnet", "jaxnet raw key")
    assert set(medians) == {f"{n} {m}" for n in names for m in ("read", "noread")}
    assert all(value > 0 for value in medians.values())


def test_the_predict_benchmark_compares_four_paths(capsys) -> None:
    from experiments.benchmarks import predict

    predict.main(["--rows", "300", "--batch-size", "128", "--repeats", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("300 rows, batch 128, median of 1, ")
    assert [line.split(" | ")[0] for line in lines[3:]] == [
        "| hand-written jit loop",
        "| Model.predict_outputs",
        "| jax.jit(artifact.call)",
        "| artifact.call, bare",
    ]
    assert lines[3].endswith("| 1.00 |")
