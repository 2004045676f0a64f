"""One process of the multi-host test: 2 processes x 4 CPU devices on loopback (run by test_multihost.py).

python tests/multihost/worker.py PROCESS_ID PORT
"""

from __future__ import annotations

import json
import os
import sys


def main(pid: int, port: str) -> None:
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    import lossjax
    from tests.multihost.cases import LOSSES, TRANSFORMS, data

    shard_map = getattr(jax, "shard_map", None) or __import__("jax.experimental.shard_map").experimental.shard_map
    mesh = Mesh(np.asarray(jax.devices()), ("d",))
    w, x, y, labels = data()
    n_local = x.shape[0] // 2
    rows = slice(pid * n_local, (pid + 1) * n_local)

    def shard(a):
        return jax.make_array_from_process_local_data(NamedSharding(mesh, P("d")), a[rows])

    xs, ys, ls = shard(x), shard(y), shard(labels)
    out = {"pid": pid, "devices": jax.device_count(), "losses": {}, "transforms": {}}
    for name, loss in LOSSES.items():
        step = lossjax.data_parallel_value_and_grad(lambda *a, loss=loss: loss(*a, axis_name="d"), axis_name="d")
        f = jax.jit(shard_map(step, mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))
        value, grad = f(w, xs, ys, ls)
        out["losses"][name] = {"value": float(value), "grad": np.asarray(grad).tolist()}
    for name, make in TRANSFORMS.items():
        tx = make()

        def per_device(w, x, y, labels, tx=tx):
            from tests.multihost.cases import per_loss_grads

            grads = per_loss_grads(w, x, y, labels, axis_name="d")  # [m, ...], averaged over all 8 devices
            updates, _ = tx.update(grads, tx.init(w), w)
            return updates

        f = jax.jit(shard_map(per_device, mesh=mesh, in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))
        out["transforms"][name] = np.asarray(f(w, xs, ys, ls)).tolist()
    print("RESULT " + json.dumps(out), flush=True)
    jax.distributed.shutdown()
    del jnp


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main(int(sys.argv[1]), sys.argv[2])
