"""The command line: list, describe, check, demo."""

import contextlib
import io

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
    code, out, _ = _run(["check", "softmax_cross_entropy", "--property", "jit", "--property", "where"])
    assert code == 0 and "2 passed, 0 failed" in out


def test_demo_runs_and_reports(capsys):
    code = cli.main(["demo", "--steps", "30", "--quiet", "--runs", "composed"])
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
