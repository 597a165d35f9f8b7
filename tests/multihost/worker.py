"""One process of a multi-process training run, for tests/test_distributed.py.

    python tests/multihost/worker.py OUT_FILE --devices 2 [--coordinator HOST:PORT --processes N --process-id I]

Trains iris with ``jn.train.fit`` data-parallel over every device of every process, and writes
the final parameters (process 0 only) to OUT_FILE as a NumPy ``.npz`` (no pickle).
"""

import argparse
import os
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--coordinator")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--process-id", type=int, default=0)
    parser.add_argument("--timeout", type=int, default=60)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

    import jax
    import numpy as np
    import optax

    import jaxnet as jn

    if args.coordinator:
        jn.distributed.initialize(
            args.coordinator, args.processes, args.process_id, timeout_s=args.timeout
        )
    mesh = jn.distributed.make_mesh()
    net = jn.serial(jn.nn.Dense(8), jn.nn.Tanh, jn.nn.Dense(3))
    result = jn.train.fit(
        net,
        jn.data.load("iris"),
        optimizer=optax.adam(0.01),
        loss=jn.losses.softmax_cross_entropy,
        epochs=3,
        batch_size=16,
        mesh=mesh,
        progress=False,
    )
    flat = {
        p: np.asarray(v)
        for p, v in zip(
            jn.train.param_paths(result.train_state.params),
            jax.tree.leaves(result.train_state.params),
            strict=True,
        )
    }
    if jn.distributed.is_main_process():
        np.savez(
            args.out,
            devices=np.int32(mesh.devices.size),
            processes=np.int32(jax.process_count()),
            **flat,
        )
    print(
        f"process {jax.process_index()} of {jax.process_count()} done, {mesh.devices.size} devices",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
