"""A mutation check you can rerun: does the suite kill plausible bugs?

Each mutation edits one line of a copy of the source tree (a sign flip, a
dropped term, a changed constant, a clamp, a precision cut), then runs the
tests that should notice. A mutation is *killed* when they fail.

    python tools/mutate.py                      # every mutation, conformance suite and family tests
    python tools/mutate.py --only focal_floor   # one mutation
    python tools/mutate.py --suite conformance  # the conformance suite alone (`lossjax check`'s tests)
    python tools/mutate.py --list

The report prints one line per mutation and the kill rate; `--json FILE`
writes it. Nothing in the checkout is touched: the mutants live in a
temporary copy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # relative to the repository root
    pattern: str  # a regex matched against the file; the first match is replaced
    replacement: str
    entries: tuple[str, ...]  # registry entries whose conformance tests should notice
    tests: tuple[str, ...] = ()  # family test files that should notice
    description: str = ""


MUTATIONS = [
    Mutation(
        "focal_floor",
        "lossjax/_targets.py",
        r"(\n    return TargetProbs\()",
        r"\n    log_p = jnp.maximum(log_p, jnp.log(jnp.asarray(1e-7, dtype)))\1",
        ("focal_loss", "softmax_cross_entropy"),
        ("tests/losses/test_classification.py",),
        "a 'safety' floor log p >= log(1e-7) on the target probability",
    ),
    Mutation(
        "margin_clamp",
        "lossjax/losses/_margins.py",
        r"(\n_COS_LIMIT = )[^\n]*",
        r"\g<1>1.0 - 1e-4",
        ("arcface_loss", "additive_margin_softmax"),
        ("tests/losses/test_margins.py",),
        "the margin losses' cosine clamp moved from 1-1e-7 to 1-1e-4",
    ),
    Mutation(
        "ce_constant_zero",
        "lossjax/losses/_classification.py",
        r"C\.zero_masked\(_cross_entropy\(t\.logits, q\), t\.mask\)",
        r"C.zero_masked(_cross_entropy(t.logits, q) * 0.0, t.mask)",
        ("softmax_cross_entropy",),
        ("tests/losses/test_classification.py",),
        "softmax cross-entropy returns 0",
    ),
    Mutation(
        "ce_ten_percent",
        "lossjax/losses/_classification.py",
        r"C\.zero_masked\(_cross_entropy\(t\.logits, q\), t\.mask\)",
        r"C.zero_masked(_cross_entropy(t.logits, q) * 1.1, t.mask)",
        ("softmax_cross_entropy",),
        ("tests/losses/test_classification.py",),
        "softmax cross-entropy 10% too large",
    ),
    Mutation(
        "ce_bf16_internal",
        "lossjax/losses/_classification.py",
        r"C\.zero_masked\(_cross_entropy\(t\.logits, q\), t\.mask\)",
        r"C.zero_masked(_cross_entropy(t.logits.astype(jnp.bfloat16).astype(t.logits.dtype), q), t.mask)",
        ("softmax_cross_entropy",),
        ("tests/losses/test_classification.py",),
        "softmax cross-entropy computed from bf16-rounded logits",
    ),
    Mutation(
        "label_smoothing_dropped",
        "lossjax/_targets.py",
        r"return q \* \(1 - a\) \+ jnp\.where\(possible, a / count, jnp\.zeros\(\(\), dtype\)\)",
        "return q",
        ("softmax_cross_entropy", "label_smoothing_cross_entropy"),
        ("tests/losses/test_classification.py",),
        "label smoothing ignored",
    ),
    Mutation(
        "bce_sign",
        "lossjax/losses/_classification.py",
        r"p \* y \* jax\.nn\.softplus\(-z\) \+ \(1 - y\) \* jax\.nn\.softplus\(z\)",
        "p * y * jax.nn.softplus(z) + (1 - y) * jax.nn.softplus(z)",
        ("sigmoid_binary_cross_entropy",),
        ("tests/losses/test_classification.py",),
        "binary cross-entropy's positive term with the wrong sign",
    ),
    Mutation(
        "supcon_temperature",
        "lossjax/losses/_metric.py",
        r"def supervised_contrastive_loss\((?s:.*?)temperature: float = 0\.1",
        lambda m: m.group(0).replace("temperature: float = 0.1", "temperature: float = 0.07"),
        ("supervised_contrastive_loss",),
        ("tests/losses/test_metric.py", "tests/test_defaults.py"),
        "SupCon's default temperature changed",
    ),
    Mutation(
        "triplet_margin_dropped",
        "lossjax/losses/_metric.py",
        r"def triplet_margin_loss\((?s:.*?)margin: float = 1\.0",
        lambda m: m.group(0).replace("margin: float = 1.0", "margin: float = 0.0"),
        ("triplet_margin_loss",),
        ("tests/losses/test_metric.py", "tests/test_defaults.py"),
        "the triplet margin's default dropped",
    ),
    Mutation(
        "dpo_beta",
        "lossjax/losses/_preference.py",
        r"def dpo_loss\((?s:.*?)beta: float = 0\.1",
        lambda m: m.group(0).replace("beta: float = 0.1", "beta: float = 0.2"),
        ("dpo_loss",),
        ("tests/losses/test_preference.py", "tests/test_defaults.py"),
        "DPO's default beta doubled",
    ),
    Mutation(
        "config_zero_update",
        "lossjax/transforms/_multitask.py",
        r"(\n@register\(\n    \"config\",(?s:.*?)\n    return )(\w+\([^\n]*\))\n",
        r"\1_zero_update(\2)\n",
        ("config",),
        ("tests/transforms/test_multitask.py",),
        "ConFIG returns a zero update",
    ),
    Mutation(
        "sam_no_perturbation",
        "lossjax/transforms/_sam.py",
        r"def sam\((?s:.*?)rho: float = 0\.05",
        lambda m: m.group(0).replace("rho: float = 0.05", "rho: float = 0.0"),
        ("sam",),
        ("tests/transforms/test_sam.py", "tests/test_defaults.py"),
        "SAM's default radius 0 (plain SGD)",
    ),
]

_ZERO_UPDATE = """

def _zero_update(tx):  # mutation helper
    import optax as _optax
    import jax as _jax

    def update(updates, state, params=None, **extra):
        out, state = tx.update(updates, state, params, **extra)
        return _jax.tree.map(lambda x: x * 0, out), state

    return _optax.GradientTransformationExtraArgs(tx.init, update)
"""


def _apply(tree: pathlib.Path, m: Mutation) -> bool:
    path = tree / m.path
    if not path.exists():
        return False
    text = path.read_text()
    new, n = re.subn(m.pattern, m.replacement, text, count=1)
    if n == 0:
        return False
    if "_zero_update" in new and "def _zero_update" not in new:
        new += _ZERO_UPDATE
    path.write_text(new)
    return True


def _copy_tree(dst: pathlib.Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)


def _run(tree: pathlib.Path, m: Mutation, suite: str, timeout: int) -> tuple[bool, float, str]:
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    commands = []
    if suite in ("conformance", "all"):
        commands.append([*args, "tests/test_conformance.py", "-k", " or ".join(m.entries)])
    if suite in ("family", "all"):
        commands.append([*args, "--import-mode=importlib", *m.tests])
    for cmd in commands:
        try:
            res = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return True, time.perf_counter() - t0, "timeout (counted as killed)"
        if res.returncode != 0:
            last = [ln for ln in res.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))][:1]
            return True, time.perf_counter() - t0, (last[0] if last else res.stdout.strip().splitlines()[-1])[:160]
    return False, time.perf_counter() - t0, "survived"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", action="append", help="run only these mutations (repeatable)")
    p.add_argument("--suite", choices=("all", "conformance", "family"), default="all")
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--list", action="store_true")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    chosen = [m for m in MUTATIONS if not args.only or m.name in args.only]
    if args.list:
        for m in chosen:
            print(f"{m.name:28s} {m.path:40s} {m.description}")
        return 0
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in chosen:
            tree = pathlib.Path(tmp) / m.name
            _copy_tree(tree)
            if not _apply(tree, m):
                report.append({"mutation": m.name, "status": "not applicable (pattern not found)"})
                print(f"{m.name:28s} not applicable", flush=True)
                continue
            killed, seconds, detail = _run(tree, m, args.suite, args.timeout)
            report.append({"mutation": m.name, "killed": killed, "seconds": round(seconds, 1), "detail": detail})
            print(f"{m.name:28s} {'KILLED  ' if killed else 'SURVIVED'} {seconds:6.1f}s  {detail}", flush=True)
            shutil.rmtree(tree, ignore_errors=True)
    applicable = [r for r in report if "killed" in r]
    killed = sum(r["killed"] for r in applicable)
    print(f"\n{killed} of {len(applicable)} applicable mutations killed (suite: {args.suite})")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"suite": args.suite, "results": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
