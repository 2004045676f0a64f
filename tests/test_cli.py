"""The command line: list, describe, check, demo."""

import contextlib
import io
import re
import types

import numpy as np
import pytest

from lossjax import cli, demo


def _run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_list_and_family_filter():
    code, out, _ = _run(["list", "--family", "classification"])
    assert code == 0 and "softmax_cross_entropy" in out and "entries" in out


def test_describe_and_unknown_name():
    code, out, _ = _run(["describe", "ce"])
    assert code == 0 and "softmax_cross_entropy" in out and "paper:" in out
    code, _, err = _run(["describe", "softmax_crossentropy"])
    assert code == 2 and "Did you mean" in err


def test_check_prints_table():
    # a variant-free entry: the table is the point here (softmax_cross_entropy's variants took ~5 s)
    code, out, _ = _run(["check", "absolute_error", "--property", "jit", "--property", "where"])
    assert code == 0 and re.search(r"absolute_error\s+pass\s+pass", out) and "2 passed, 0 failed" in out


def test_demo_runs_and_reports(capsys):
    # tiny model and few steps: this checks the run and its report, not the training
    code = cli.main(["demo", "--steps", "3", "--batch-size", "16", "--hidden", "8", "--quiet", "--runs", "composed"])
    out = capsys.readouterr().out
    assert code == 0 and "test acc" in out and "composed loss" in out


def test_demo_rejects_unknown_run():
    with pytest.raises(SystemExit):
        demo.main(["--runs", "nope", "--quiet"])


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["list", "--family", "metrics"], "unknown family 'metrics'. Did you mean 'metric'"),
        (["list", "--kind", "batchy"], "`kind` must be one of"),
        (["describe", "focal_los"], "Did you mean 'focal_loss'"),
        (["check", "focal_los"], "Did you mean 'focal_loss'"),
        (["check", "focal_loss", "--property", "jitt"], "unknown property 'jitt'. Did you mean 'jit'"),
    ],
)
def test_misuse_gives_one_line_error_and_nonzero_exit(argv, needle):
    code, out, err = _run(argv)
    assert code == 2, (argv, code, out, err)
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bench_lists_cases_and_rejects_unknown_topics(monkeypatch):
    code, out, _ = _run(["bench", "--list", "--only", "classification"])
    assert code == 0 and "focal" in out and "metric" not in out  # whole names: no substring matches
    # A name that is no topic makes the runner build every case to look for a matching key: two tiny
    # stand-in topics keep that cheap (the real cases take ~25 s to build on CPU).
    from lossjax.benchmarks import run

    from lossjax.benchmarking import Case

    def topic(key):
        x = np.ones(4, np.float32)
        return types.SimpleNamespace(cases=lambda size: [Case(key, {"sum": (np.sum, (x,))}, baseline="sum", key=key)])

    monkeypatch.setattr(run, "discover", lambda: iter([("metric", topic("metric")), ("sam", topic("looksam"))]))
    code, out, _ = _run(["bench", "--list", "--only", "looksam"])
    assert code == 0 and "looksam" in out and "metric" not in out  # a case key selects across topics
    code, _, err = _run(["bench", "--only", "metrics"])
    assert code == 2 and "nothing matches" in err and "metric" in err


def test_run_case_measures_its_floor_and_filters_variants():
    import jax.numpy as jnp

    from lossjax.benchmarking import FLOOR, Case, run_case

    x = jnp.ones((4096,))
    case = Case("demo", {"sum": (jnp.sum, (x,)), "mean": (jnp.mean, (x,))}, baseline="sum", floor_bytes=8 * 4096)
    rows = run_case(case, rounds=3, variant_filter="mean", min_round_s=0.001)
    assert sorted(r.variant for r in rows) == sorted(["sum", "mean", FLOOR])
    assert all(r.floor_ratio is not None and r.floor_ratio > 0 for r in rows)


def test_run_case_times_peers_and_reports_failing_variants():
    import importlib.util

    import jax.numpy as jnp

    from lossjax.benchmarking import Case, Peer, format_table, run_case, torch_peer

    x = jnp.ones((4096,))
    synced = []

    def broken(a):
        raise RuntimeError("cusolver error: not enough workspace\nsecond line")

    case = Case(
        "demo",
        {
            "sum": (jnp.sum, (x,)),
            "peer: numpy": Peer(np.sum, (np.ones(4096),), sync=lambda: synced.append(1)),
            "lossjax broken": (broken, (x,)),
        },
        baseline="sum",
    )
    rows = {r.variant: r for r in run_case(case, rounds=3, min_round_s=0.001)}
    assert rows["peer: numpy"].median_ms > 0 and not rows["peer: numpy"].error and synced  # timed, synchronized
    assert rows["lossjax broken"].error == "RuntimeError: cusolver error: not enough workspace"
    assert "FAILED RuntimeError" in format_table(list(rows.values()))
    # A variant labelled "floor: ..." (a compute floor: the bare matmuls) is the "x floor" reference.
    floored = run_case(
        Case("demo", {"sum": (jnp.sum, (x,)), "floor: bare": (lambda a: a, (x,))}, baseline="sum"),
        rounds=3,
        variant_filter="nothing matches",
        min_round_s=0.001,
    )
    assert {r.variant: r.floor_ratio for r in floored}["floor: bare"] == 1.0  # kept by the filter, its own floor
    # A failing baseline fails the case (there is nothing to take ratios against).
    with pytest.raises(RuntimeError, match="cusolver"):
        run_case(Case("demo", {"b": (broken, (x,))}, baseline="b"), rounds=3)
    # The PyTorch peer exists exactly where torch is installed (never a lossjax dependency).
    peer = torch_peer(lambda t: t.sum(), (x,))
    assert (peer is None) == (importlib.util.find_spec("torch") is None)


def test_version_json_and_import(tmp_path, monkeypatch):
    import json
    from importlib import metadata

    with pytest.raises(SystemExit) as e:
        _run(["--version"])
    assert e.value.code == 0
    import lossjax

    assert lossjax.__version__ == metadata.version("lossjax")
    code, out, _ = _run(["list", "--family", "classification", "--json"])
    rows = json.loads(out)
    assert code == 0 and any(r["name"] == "softmax_cross_entropy" and r["kind"] == "per_example" for r in rows)
    code, out, _ = _run(["describe", "sam", "--json"])
    rec = json.loads(out)
    assert code == 0 and rec["kind"] == "transform" and "rho" in rec["hyperparams"]
    # A user's own module registers a loss; `check --import` sees it.
    (tmp_path / "my_losses_cli.py").write_text(
        "import jax.numpy as jnp, numpy as np\n"
        "from lossjax import register\n"
        "from lossjax.registry import Sample\n"
        "@register('my_abs_loss_cli', family='user', kind='per_example', paper='none (a test)',\n"
        "          sample=lambda: Sample(args=(np.linspace(-1, 1, 6).astype(np.float32),), diff_argnums=(0,),\n"
        "                                where=True))\n"
        "def my_abs_loss_cli(x, *, where=None):\n"
        "    return jnp.where(where if where is not None else True, jnp.abs(x) + x * x, 0.0)\n"
    )
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = _run(["check", "--import", "my_losses_cli", "my_abs_loss_cli", "--property", "jit", "--json"])
        assert code == 0, err
        assert json.loads(out) == [
            {
                "name": "my_abs_loss_cli",
                "property": "jit",
                "ok": True,
                "detail": "",
                "seconds": json.loads(out)[0]["seconds"],
            }
        ]
        assert "[1] my_abs_loss_cli jit: ok" in err
    finally:
        from lossjax import registry

        registry.unregister("my_abs_loss_cli")
    code, _, err = _run(["check", "--import", "no_such_module_xyz", "focal_loss"])
    assert code == 2 and "ModuleNotFoundError" in err and len(err.strip().splitlines()) == 1


def test_demo_loss_typo_and_broken_pipe():
    import subprocess
    import sys

    # both processes at once (each spends seconds importing lossjax)
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    typo = subprocess.Popen([sys.executable, "-m", "lossjax.cli", "demo", "--loss", "focal_los", "--steps", "1"], **kw)
    pipe = subprocess.Popen(f"{sys.executable} -m lossjax.cli describe sam | head -c 10", shell=True, **kw)
    out, err = typo.communicate(timeout=300)
    assert typo.returncode == 2 and "Did you mean 'focal_loss'" in err and "Traceback" not in err
    out, err = pipe.communicate(timeout=300)
    assert out and "Traceback" not in err and "BrokenPipe" not in err


def test_schema_validates_real_configs_and_rejects_typos():
    import json

    import jsonschema

    import lossjax

    code, out, _ = _run(["schema"])
    schema = json.loads(out)
    assert code == 0 and set(lossjax.available()) <= set(schema["$defs"]["names"]["enum"])
    validator = jsonschema.Draft202012Validator(schema)
    good = [
        "softmax_cross_entropy + 0.5 * focal_loss",
        lossjax.get("focal_loss(gamma=2.0)").to_config(),
        lossjax.compose("softmax_cross_entropy(label_smoothing=0.1) + 0.5 * focal_loss").to_config(),
        {"chain": [{"name": "sam", "rho": 0.05}, {"name": "adamw", "learning_rate": 1e-3}]},
        {"name": "linear_cross_entropy", "z_loss_weight": 1e-4},
    ]
    for config in good:
        validator.validate(config)
    bad = [
        {"name": "focal_los"},  # a typo in the name
        {"name": "focal_loss", "gama": 2.0},  # a typo in a key
        {"name": "focal_loss", "gamma": "2"},  # a string where a number goes
        {"terms": []},
    ]
    for config in bad:
        assert not validator.is_valid(config), config
