"""The ``lossjax`` command line: ``list | describe | check | bench | demo``."""

from __future__ import annotations

import argparse
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
    width = max([len(n) for n in names] + [4])
    for n in names:
        e = registry.get_entry(n)
        print(f"{n.ljust(width)}  {e.family:<16} {e.kind:<12} {e.summary}")
    print(f"\n{len(names)} entries")
    return 0


def _cmd_describe(args) -> int:
    import lossjax

    try:
        print(lossjax.describe(args.name))
    except (KeyError, TypeError) as e:
        return _fail(_message(e))
    return 0


def _cmd_check(args) -> int:
    from lossjax import testing

    props = args.property or None
    known = set(testing.LOSS_PROPERTIES) | set(testing.TRANSFORM_PROPERTIES)
    for prop in props or ():
        if prop not in known:
            import difflib

            close = difflib.get_close_matches(prop, sorted(known), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            return _fail(f"unknown property {prop!r}.{hint} Properties: {', '.join(sorted(known))}.")
    try:
        results = testing.run(args.names or None, properties=props)
    except KeyError as e:
        return _fail(_message(e))
    if not results:
        return _fail("nothing was checked (no property applies to the selected entries).")
    ok = testing.print_table(results)
    return 0 if ok else 1


def _cmd_bench(args, rest) -> int:
    from lossjax.benchmarks import run

    return run.main(rest)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="lossjax", description="lossjax: losses and optax transforms for JAX.")
    sub = p.add_subparsers(dest="cmd", required=True)
    pl = sub.add_parser("list", help="list registered losses and transforms")
    pl.add_argument("--family")
    pl.add_argument("--kind")
    pd = sub.add_parser("describe", help="formula, arguments, defaults, paper, reference")
    pd.add_argument("name")
    pc = sub.add_parser("check", help="run the conformance suite on this backend")
    pc.add_argument("names", nargs="*", help="entries to check (default: all)")
    pc.add_argument("--property", action="append", help="only these properties (repeatable)")
    sub.add_parser("bench", help="run benchmarks/run.py (arguments are passed through)", add_help=False)
    sub.add_parser("demo", help="train a small model on digits with registry-built losses", add_help=False)
    if argv and argv[0] in ("bench", "demo"):
        cmd, rest = argv[0], argv[1:]
        if cmd == "bench":
            return _cmd_bench(None, rest)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from lossjax import demo

        return demo.main(rest)
    args = p.parse_args(argv)
    return {"list": _cmd_list, "describe": _cmd_describe, "check": _cmd_check}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
