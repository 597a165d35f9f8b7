"""One process of a multi-process training run, for tests/test_distributed.py.

    python tests/multihost/worker.py --devices 2 [--coordinator HOST:PORT --processes N
        --process-id I] --scenario "OUT_FILE [--model M] [--run-dir DIR] [--stream] [--plateau]"
        [--scenario "..." ...]

Runs each ``--scenario`` in turn inside one process (one ``jax.distributed`` job, paying the
start-up once); a scenario is one training, its options quoted as a shell would. Each trains
iris with ``jn.train.fit`` over every device of every process: data-parallel, or with
``--model M`` the first two layers' weights split over a ``model`` mesh axis of M devices
(with M = all devices, each process holds only its shards). With ``--run-dir`` every epoch is
checkpointed there, and the latest checkpoint is restored into the sharded state and compared
with it. With ``--stream`` the data is a ``jn.data.Stream`` instead: each epoch's global
batches come in a fixed order, and each process streams only its rows of each (its share of
the batch axis), which ``fit`` assembles into global arrays, and step rows are reported inside
the epochs (``log_every=3, eval_every=4``): every process evaluates at the same steps. With
``--plateau`` the learning rate is halved between epochs 2 and 3 (a scale in the optimizer
state, which every process sets and checkpoints).
Process 0 writes each scenario's final parameters (and the step rows) to its OUT_FILE as a
NumPy ``.npz`` (no pickle).
"""

import argparse
import os
import shlex
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--coordinator")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=60)
    parser.add_argument("--scenario", action="append", required=True)
    args = parser.parse_args()
    scenarios = [_scenario_parser().parse_args(shlex.split(s)) for s in args.scenario]
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

    import jax

    import jaxnet as jn

    if args.coordinator:
        jn.distributed.initialize(
            args.coordinator, args.processes, args.process_id, timeout_s=args.timeout
        )
    for scenario in scenarios:
        devices = _train(scenario)
        print(
            f"process {jax.process_index()} of {jax.process_count()}: {scenario.out} done, "
            f"{devices} devices",
            file=sys.stderr,
        )


def _scenario_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="--scenario")
    parser.add_argument("out")
    parser.add_argument("--model", type=int, default=1)
    parser.add_argument("--run-dir")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--plateau", action="store_true")
    return parser


def _train(args: argparse.Namespace) -> int:
    """Trains one scenario; process 0 writes its results to ``args.out``. Returns the number of
    devices it trained on. (Long: the fit, then every result the tests read, in one place.)"""
    import jax
    import numpy as np
    import optax
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec

    import jaxnet as jn

    mesh = jn.distributed.make_mesh(model=args.model)
    rules = None
    if args.model > 1:
        rules = {
            "dense_0/w": PartitionSpec(None, "model"),
            "dense_1/w": PartitionSpec("model", None),
        }
    net = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
    data = jn.data.load("iris")
    rows = _StepRows()
    result = jn.train.fit(
        net,
        _local_stream(data, 16) if args.stream else data,
        optimizer=optax.adam(0.01),
        loss=jn.losses.softmax_cross_entropy,
        epochs=3,
        batch_size=None if args.stream else 16,
        mesh=mesh,
        rules=rules,
        progress=False,
        run_dir=args.run_dir,
        **(
            {"streaming": jn.train.Streaming(log_every=3, eval_every=4), "loggers": [rows]}
            if args.stream
            else {}
        ),
        update=_plateau() if args.plateau else None,
    )

    def gathered(tree):  # every leaf whole, also where each process holds only its shards
        return [
            np.asarray(
                v if v.is_fully_addressable else multihost_utils.process_allgather(v, tiled=True)
            )
            for v in jax.tree.leaves(tree)
        ]

    params = result.train_state.params
    flat = dict(zip(jn.train.param_paths(params), gathered(params), strict=True))
    extra = {}
    if args.plateau:
        extra["lr_scales"] = np.asarray([row["lr_scale"] for row in result.history])
    if args.stream:
        extra["row_steps"] = np.asarray([row["step"] for row in rows.rows], np.int32)
        for key in ("train_loss", "test_loss"):
            extra[f"row_{key}"] = np.asarray([row.get(key, np.nan) for row in rows.rows])
    if args.run_dir:
        checkpoints = jn.train.RunFolder(args.run_dir).checkpointer()
        restored = checkpoints.restore(result.train_state)
        differences = [
            float(np.max(np.abs(a - b)))
            for a, b in zip(gathered(restored.params), gathered(params), strict=True)
        ]
        extra["restored_difference"] = np.float64(max(differences))
        extra["checkpoint_steps"] = np.asarray(checkpoints.steps(), np.int32)
        w0 = params["dense_0"]["w"]
        extra["w0_shards"] = np.int32(len(w0.addressable_shards))
        extra["w0_shape"] = np.array(w0.shape)
        extra["w0_shard_shape"] = np.array(w0.addressable_shards[0].data.shape)
    if jn.distributed.is_main_process():
        np.savez(
            args.out,
            devices=np.int32(mesh.devices.size),
            processes=np.int32(jax.process_count()),
            **extra,
            **flat,
        )
    return mesh.devices.size


def _plateau():
    """A rule that halves the rate after epoch 2 (the training loss falls: in "max" mode that
    is no improvement), so the scale in the optimizer state changes between epochs."""
    import jaxnet as jn

    rule = jn.train.ReduceOnPlateau(monitor="train_loss", mode="max", factor=0.5, patience=1)
    return jn.train.Update(reduce_on_plateau=rule)


class _StepRows:
    """A logger keeping the step rows of a streaming fit."""

    def __init__(self):
        self.rows = []

    def log(self, step, row):
        pass

    def log_steps(self, step, row):
        self.rows.append(dict(row))

    def close(self):
        pass


def _local_stream(data, batch_size):
    """This process's share of each global batch (a fixed order per epoch), and of the test
    split: the rows its devices hold of the batch axis."""
    import jax
    import numpy as np

    import jaxnet as jn

    count, index = jax.process_count(), jax.process_index()
    share = batch_size // count

    def epoch(e):
        order = np.random.default_rng(e).permutation(data.num_train)
        for i in range(data.num_train // batch_size):
            rows = order[i * batch_size : (i + 1) * batch_size][index * share : (index + 1) * share]
            yield data.x_train[rows], data.y_train[rows]

    part = 28 // count  # of the 30 test rows: 28, which divide among 4 devices
    rows = slice(index * part, (index + 1) * part)
    test = [(data.x_test[rows], data.y_test[rows])]
    return jn.data.stream(epoch, test=test)


if __name__ == "__main__":
    main()
