"""Multi-host without a cluster: 2 processes x 4 CPU devices on loopback (jax.distributed + gloo).

Batch-level losses (gathering across both processes) and multi-loss transforms
(averaging per-loss gradients across both processes) must give the
single-process result.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np

from lossjax.testing import assert_close
from tests.multihost.cases import LOSSES, TRANSFORMS, data, per_loss_grads

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_two_processes():
    port = str(_free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    worker = str(ROOT / "tests" / "multihost" / "worker.py")
    return [
        subprocess.Popen(
            [sys.executable, worker, str(i), port], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for i in range(2)
    ]


def _results(procs):
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err.decode()[-3000:]
        line = next(ln for ln in out.decode().splitlines() if ln.startswith("RESULT "))
        results.append(json.loads(line[len("RESULT ") :]))
    return results


def test_two_processes_give_the_single_process_result():
    procs = _start_two_processes()  # the single-process references are computed while they run
    w, x, y, labels = data()

    @jax.jit  # the single-process references in one compile (eager, every op compiled on its own: ~17 s)
    def single_process(w, x, y, labels):
        losses = {name: jax.value_and_grad(loss)(w, x, y, labels) for name, loss in LOSSES.items()}
        grads = per_loss_grads(w, x, y, labels)
        transforms = {
            name: tx.update(grads, tx.init(w), w)[0] for name, tx in ((n, m()) for n, m in TRANSFORMS.items())
        }
        return losses, transforms

    try:
        ref_losses, ref_transforms = single_process(w, x, y, labels)
    except BaseException:
        for p in procs:
            p.kill()
        raise
    results = _results(procs)
    assert [r["devices"] for r in results] == [8, 8]
    for name, (value, grad) in ref_losses.items():
        for r in results:
            assert_close(r["losses"][name]["value"], float(value), err=f"{name}: value, process {r['pid']}")
            assert_close(np.asarray(r["losses"][name]["grad"]), grad, err=f"{name}: gradient, process {r['pid']}")
    for name, expected in ref_transforms.items():
        for r in results:
            assert_close(np.asarray(r["transforms"][name]), expected, err=f"{name}: update, process {r['pid']}")
