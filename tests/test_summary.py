"""The model table."""

import jax
import jax.numpy as jnp

import jaxnet as jn


def test_summary_writes_the_lecture_shapes(capsys):
    net = jn.serial(jn.nn.Dense(9), jn.nn.Sigmoid, jn.nn.Dense(4), jn.nn.Softmax)
    table = jn.summary(net, (1, 8))
    assert capsys.readouterr().out == table + "\n"
    lines = table.splitlines()
    assert lines[0].split() == ["layer", "shapes", "params", "flops"]
    assert lines[1].split()[:7] == ["serial/dense_0", "1×8", "·", "8×9", "→", "1×9", "81"]
    assert lines[2].split()[:5] == ["serial/sigmoid_0", "1×9", "→", "1×9", "0"]
    assert lines[3].split()[:7] == ["serial/dense_1", "1×9", "·", "9×4", "→", "1×4", "40"]
    assert lines[-1].split()[:2] == ["total", "121"]


def test_summary_counts_match_the_real_params_for_nested_nets(key):
    net = jn.serial(
        jn.nn.Flatten,
        jn.residual(jn.serial(jn.nn.Dense(12), jn.nn.Relu)),
        jn.parallel(jn.nn.Dense(5), jn.named("head", jn.nn.Dense(2))),
    )
    rows = jn.summary_rows(net, (None, 3, 4))
    assert [r.path for r in rows] == [
        "serial/flatten_0",
        "serial/residual_0/serial_0/dense_0",
        "serial/residual_0/serial_0/relu_0",
        "serial/parallel_0/dense_0",
        "serial/parallel_0/head",
    ]
    assert rows[1].input_shape == (None, 12)
    assert rows[-1].output_shape == (None, 2)
    _, params, _ = net.init(key, (2, 3, 4))
    real = sum(leaf.size for leaf in jax.tree.leaves(params))
    assert sum(r.param_count for r in rows) == real
    table = jn.summary(net, (None, 3, 4), show=False)
    assert "N×12 · 12×12 → N×12" in table
    assert table.splitlines()[-1].split()[:2] == ["total", f"{real:,}"]


def test_summary_of_a_single_layer_and_of_a_huge_net():
    assert jn.summary_rows(jn.nn.Relu, (2, 3))[0].path == "relu"
    huge = jn.serial(jn.nn.Dense(50_000), jn.nn.Dense(50_000))
    rows = jn.summary_rows(huge, (1, 50_000))  # abstract: no 10 GB of parameters created
    assert rows[1].param_count == 50_000 * 50_000 + 50_000
    assert jnp.zeros(()).dtype == jnp.float32


def test_flops_of_a_dense_layer_are_two_in_out_plus_bias():
    (row,) = jn.summary_rows(jn.nn.Dense(9), (1, 8))
    assert row.flops == 2 * 8 * 9 + 9  # multiply-adds of x·W, then + b
    (per_example,) = jn.summary_rows(jn.nn.Dense(9), (None, 8))
    (batch_of_32,) = jn.summary_rows(jn.nn.Dense(9), (32, 8))
    assert batch_of_32.flops == 32 * per_example.flops
