"""The ``lossjax`` command line: ``list | describe | check | bench | demo``."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import sys


def _fail(message: str) -> int:
    """A one-line error on stderr and exit code 2 (never a traceback)."""
    print(f"lossjax: {message}", file=sys.stderr)
    return 2


def _message(e: Exception) -> str:
    return str(e.args[0]) if e.args else str(e)


def _cmd_list(args) -> int:
    import lossjax
    from lossjax import registry

    try:
        names = lossjax.available(family=args.family, kind=args.kind)
    except (KeyError, ValueError) as e:
        return _fail(_message(e))
    rows = [registry.get_entry(n) for n in names]
    if args.json:
        print(json.dumps([{"name": e.name, "family": e.family, "kind": e.kind, "summary": e.summary} for e in rows]))
        return 0
    width = max([len(n) for n in names] + [4])
    for e in rows:
        print(f"{e.name.ljust(width)}  {e.family:<16} {e.kind:<12} {e.summary}")
    print(f"\n{len(names)} entries")
    return 0


def _describe_record(name: str) -> dict:
    """The registry's facts about one entry, as plain data."""
    from lossjax import registry

    e = registry.get_entry(name)
    return {
        "name": e.name,
        "aliases": list(e.aliases),
        "family": e.family,
        "kind": e.kind,
        "summary": e.summary,
        "formula": e.formula,
        "paper": e.paper,
        "reference": e.reference,
        "hyperparams": {
            k: ("<required>" if v is inspect.Parameter.empty else repr(v)) for k, v in e.hyperparams.items()
        },
        "runtime": list(e.runtime),
        "has_aux": e.has_aux,
        "text": registry.describe(name),
    }


def _cmd_describe(args) -> int:
    import lossjax

    try:
        if args.json:
            print(json.dumps(_describe_record(args.name)))
        else:
            print(lossjax.describe(args.name))
    except (KeyError, TypeError) as e:
        return _fail(_message(e))
    return 0


def _import_user_modules(modules: list[str]) -> str | None:
    """Imports the users' modules that register their own losses; returns an error message or None."""
    sys.path.insert(0, os.getcwd())
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as e:  # any import failure is the user's to see, in one line
            return f"check --import {module}: {type(e).__name__}: {_message(e)}"
    return None


def _cmd_check(args) -> int:
    from lossjax import testing

    if args.imports:
        err = _import_user_modules(args.imports)
        if err:
            return _fail(err)
    props = args.property or None
    known = set(testing.LOSS_PROPERTIES) | set(testing.TRANSFORM_PROPERTIES)
    for prop in props or ():
        if prop not in known:
            import difflib

            close = difflib.get_close_matches(prop, sorted(known), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            return _fail(f"unknown property {prop!r}.{hint} Properties: {', '.join(sorted(known))}.")
    done: list[str] = []

    def progress(result) -> None:  # one stderr line per finished entry: the full run takes minutes
        if args.quiet:
            return
        if not done or done[-1] != result.name:
            done.append(result.name)
        mark = "ok" if result.ok else "FAIL"
        print(f"[{len(done)}] {result.name} {result.prop}: {mark} ({result.seconds:.1f} s)", file=sys.stderr)

    try:
        results = testing.run(args.names or None, properties=props, progress=progress)
    except KeyError as e:
        return _fail(_message(e))
    if not results:
        return _fail("nothing was checked (no property applies to the selected entries).")
    if args.json:
        print(
            json.dumps(
                [
                    {"name": r.name, "property": r.prop, "ok": r.ok, "detail": r.detail, "seconds": r.seconds}
                    for r in results
                ]
            )
        )
        ok = all(r.ok for r in results)
    else:
        ok = testing.print_table(results)
    return 0 if ok else 1


def _cmd_schema(args) -> int:
    from lossjax import registry

    print(json.dumps(registry.spec_schema(), indent=1))
    return 0


def _cmd_bench(args, rest) -> int:
    from lossjax.benchmarks import run

    return run.main(rest)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code (0 ok, 1 a check failed, 2 misuse)."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except BrokenPipeError:  # `lossjax describe x | head`: the reader left, nothing is wrong
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    from lossjax import __version__

    p = argparse.ArgumentParser(prog="lossjax", description="lossjax: losses and optax transforms for JAX.")
    p.add_argument("--version", action="version", version=f"lossjax {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("list", help="list registered losses and transforms")
    pl.add_argument("--family")
    pl.add_argument("--kind")
    pl.add_argument("--json", action="store_true", help="print a JSON list")
    pd = sub.add_parser("describe", help="formula, arguments, defaults, paper, reference")
    pd.add_argument("name")
    pd.add_argument("--json", action="store_true", help="print a JSON object")
    pc = sub.add_parser("check", help="run the conformance suite on this backend")
    pc.add_argument("names", nargs="*", help="entries to check (default: all)")
    pc.add_argument("--property", action="append", help="only these properties (repeatable)")
    pc.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (your own registered losses; repeatable)",
    )
    pc.add_argument("--json", action="store_true", help="print the results as JSON")
    pc.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    sub.add_parser("schema", help="print the JSON Schema of the plain-data specs (for editors)")
    sub.add_parser("bench", help="run the benchmarks (arguments are passed through)", add_help=False)
    sub.add_parser("demo", help="train a small model on digits with registry-built losses", add_help=False)
    if argv and argv[0] in ("bench", "demo"):
        cmd, rest = argv[0], argv[1:]
        if cmd == "bench":
            return _cmd_bench(None, rest)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            from lossjax import demo
        except ImportError as e:
            return _fail(f"demo needs the [demo] extra ({_message(e)}): pip install 'lossjax[demo]'")
        return demo.main(rest)
    args = p.parse_args(argv)
    return {"list": _cmd_list, "describe": _cmd_describe, "check": _cmd_check, "schema": _cmd_schema}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
