"""Sharded against unsharded training on 8 forced CPU devices, for tests/test_distributed.py.

Prints one JSON object: the largest parameter differences of data-parallel and
data+model-parallel runs against the single-device run, and the errors of bad inputs.
"""

import json
import os

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"

import jax
import numpy as np
import optax
from jax.sharding import PartitionSpec

import jaxnet as jn


def largest_difference(a, b):
    return max(
        float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def main() -> None:
    net = jn.serial(jn.nn.Dense(16), jn.nn.Relu, jn.nn.Dense(8), jn.nn.Relu, jn.nn.Dense(3))
    data = jn.data.load("iris")
    options = {
        "optimizer": optax.adam(0.01),
        "loss": jn.losses.softmax_cross_entropy,
        "epochs": 2,
        "batch_size": 16,
        "progress": False,
    }
    single = jn.train.fit(net, data, **options)
    data_parallel = jn.train.fit(net, data, mesh=jn.distributed.make_mesh(8), **options)
    stepwise = jn.train.fit(
        net, data, mesh=jn.distributed.make_mesh(8), **{**options, "fused": False}
    )
    rules = {"dense_0/w": PartitionSpec(None, "model"), "dense_1/w": PartitionSpec("model", None)}
    model_parallel = jn.train.fit(
        net, data, mesh=jn.distributed.make_mesh(8, model=2), rules=rules, **options
    )
    report = {
        "devices": jax.device_count(),
        "data_parallel": largest_difference(
            single.train_state.params, data_parallel.train_state.params
        ),
        "stepwise_data_parallel": largest_difference(
            single.train_state.params, stepwise.train_state.params
        ),
        "stepwise_w0_sharding": str(stepwise.train_state.params["dense_0"]["w"].sharding.spec),
        "model_parallel": largest_difference(
            single.train_state.params, model_parallel.train_state.params
        ),
        "w0_spec": str(model_parallel.train_state.params["dense_0"]["w"].sharding.spec),
        "mu_spec": str(model_parallel.train_state.opt_state[0].mu["dense_0"]["w"].sharding.spec),
    }
    try:
        jn.train.fit(net, data, mesh=jn.distributed.make_mesh(8), **{**options, "batch_size": 12})
    except ValueError as error:
        report["indivisible_batch"] = str(error)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
