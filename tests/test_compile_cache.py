"""JAX's persistent compilation cache: ``jn.train.enable_compile_cache`` and ``jaxnet train``.

The cache is process-wide JAX state, so every check runs in a child process; JAX's own
monitoring events (``/jax/compilation_cache/cache_hits``) say whether a program was loaded
rather than compiled.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import jaxnet as jn

# The child: runs `jaxnet train ARGS...` in-process and prints how many compiled programs JAX
# loaded from its persistent cache, and the cache folder in use.
CHILD = textwrap.dedent(
    """
    import json, sys
    import jax
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(
        lambda name, **kw: hits.append(name) if name == "/jax/compilation_cache/cache_hits" else None
    )
    from jaxnet import cli
    status = cli.main(sys.argv[1:])
    print(json.dumps({"status": status, "hits": len(hits),
                      "folder": jax.config.jax_compilation_cache_dir}))
    """
)

FAST = ["--epochs", "1", "--width", "8", "--depth", "1", "--no-progress"]


def _train(tmp_path, out, *flags, env=None):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, "train", "--out", str(tmp_path / out), *FAST, *flags],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment | (env or {}),
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_a_second_jaxnet_train_loads_its_programs_from_the_cache(tmp_path):
    env = {"JAXNET_CACHE_DIR": str(tmp_path / "cache")}
    first, _ = _train(tmp_path, "one", env=env)
    second, _ = _train(tmp_path, "two", env=env)
    assert first["folder"] == second["folder"] == str(tmp_path / "cache")
    assert first["hits"] == 0 and second["hits"] >= 3  # init, the epoch, the evaluation
    assert any((tmp_path / "cache").iterdir())


def test_no_compile_cache_keeps_none(tmp_path):
    env = {"JAXNET_CACHE_DIR": str(tmp_path / "cache")}
    report, _ = _train(tmp_path, "run", "--no-compile-cache", env=env)
    assert report["folder"] is None and not (tmp_path / "cache").exists()


def test_a_folder_that_cannot_be_made_is_a_warning_not_a_failure(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    env = {"JAXNET_CACHE_DIR": str(tmp_path / "file" / "cache")}
    report, err = _train(tmp_path, "run", env=env)
    assert report["status"] == 0 and report["folder"] is None
    assert [line for line in err.splitlines() if "warning" in line] == [
        f"jaxnet: warning: no compilation cache ([Errno 20] Not a directory: "
        f"'{tmp_path / 'file' / 'cache'}')"
    ]


def test_a_cache_folder_given_to_jax_already_is_kept(tmp_path):
    env = {"JAX_COMPILATION_CACHE_DIR": str(tmp_path / "own")}
    report, _ = _train(tmp_path, "run", env=env)
    assert report["folder"] == str(tmp_path / "own")


def test_the_default_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("JAXNET_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert jn.train.default_cache_dir() == tmp_path / "jaxnet" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert jn.train.default_cache_dir() == pathlib.Path.home() / ".cache" / "jaxnet" / "xla"
    monkeypatch.setenv("JAXNET_CACHE_DIR", str(tmp_path / "mine"))
    assert jn.train.default_cache_dir() == tmp_path / "mine"


def test_another_folder_later_is_the_one_written(tmp_path):
    code = textwrap.dedent(
        f"""
        import os, jax, jax.numpy as jnp
        import jaxnet as jn
        jn.train.enable_compile_cache({str(tmp_path / "a")!r})
        jax.jit(lambda x: x + 1)(jnp.ones(3))
        jn.train.enable_compile_cache({str(tmp_path / "b")!r})
        jax.jit(lambda x: x * 2)(jnp.ones(3))
        print(len(os.listdir({str(tmp_path / "a")!r})), len(os.listdir({str(tmp_path / "b")!r})))
        """
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment
    )
    assert done.returncode == 0, done.stderr
    in_a, in_b = map(int, done.stdout.split())
    assert in_a >= 1 and in_b >= 1  # the second program went to the second folder
