"""Writes the API reference and migration pages of the documentation site from the registry and the public namespaces.

    python tools/gen_api_docs.py          # rewrite docs/api/*.md
    python tools/gen_api_docs.py --check  # exit 1 if they are out of date (tests/test_docs.py does this)

One page per registry family (every public name of its module, registered or
not, with its kind and paper linked), and one per public module (the top-level
API, metrics, miners, multiloss, registry, testing, benchmarking).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
API = ROOT / "docs" / "api"

MODULE_PAGES = {
    "core": ("lossjax", "The top-level API: build losses from specs, compose them, reduce, check, parallelize."),
    "metrics": ("lossjax.metrics", "Ranking and retrieval metrics (not losses)."),
    "miners": ("lossjax.miners", "Pair and triplet miners for metric learning (static shapes, validity masks)."),
    "multiloss": ("lossjax.multiloss", "Per-loss gradients of a vector of losses, for the multi-task transforms."),
    "registry": ("lossjax.registry", "The registry: entries, samples, specs."),
    "testing": ("lossjax.testing", "The conformance suite (`lossjax check`)."),
    "benchmarking": ("lossjax.benchmarking", "The benchmark harness (`lossjax bench`)."),
    "toolkit": ("lossjax.toolkit", "Argument checks, masking, dtype and numerics helpers for writing your own loss."),
    "integrations": ("lossjax.integrations", "Flax NNX, Linen and Equinox helpers for the transforms' extra args."),
}


MIGRATION = ROOT / "docs" / "migration"

#: page -> (title, regex on the registry's ``reference`` field, the page's prose (semantic differences)).
MIGRATIONS = {
    "optax": (
        "Migrating from optax losses",
        r"optax",
        """lossjax's losses keep optax's conventions: pure functions, per-example outputs (reduce them
yourself), integer labels or distributions where optax has both functions. Differences:

- **`where`** is a mask of the *examples* (rows), aligned with the leading axes of the batch: a `[B]`
  mask on a `[B, T]` loss masks whole sequences. Masked rows may hold garbage (NaN) and get exactly 0
  loss and 0 gradient. In optax, `softmax_cross_entropy(..., where=)` masks *classes* (the logits' last
  axis); in lossjax that is the `-inf` logit (handled exactly) or a `class_weights` of 0.
- **Label smoothing** is an argument (`label_smoothing=0.1`) instead of `optax.smooth_labels(labels, alpha)`
  before the loss (`lossjax.losses.smooth_labels` exists too).
- **`sigmoid_focal_loss`**: lossjax's default `alpha=0.25` is the paper's and torchvision's; optax's
  default is `alpha=None`. Pass `alpha=None` for optax's values.
- **Epsilon naming**: `epsilon` is only ever a numerical guard (`optax.triplet_margin_loss(eps=)` is
  `epsilon=`); a hyperparameter has its own name (`temperature`, `margin`, `label_smoothing`).
- **dtypes**: bf16/f16 inputs are computed in float32 and the loss is returned in float32.
- **Hyperparameters** are checked at trace time (NaN/inf, out of range) with the function, argument,
  value and what was needed.

Entries whose values are checked against optax (`reference` in the registry):""",
    ),
    "pml": (
        "Migrating from pytorch-metric-learning",
        r"pytorch-metric-learning|PML",
        """pytorch-metric-learning (PML) losses are modules combining a distance, a miner and a reducer;
lossjax losses are functions of `(embeddings, labels)` with the distance and the reduction fixed to the
configuration named in the table (the PML classes and options the expected values were computed with).
Differences:

- **Reduction**: PML reducers (`AvgNonZeroReducer`, `MeanReducer`, `DivisorReducer` ...) differ per loss;
  each lossjax entry documents the one it matches. Batch-level losses return a scalar.
- **Miners** live in `lossjax.miners` and return static-shape index tuples plus a validity mask
  (jit-friendly), not variable-length tuples; index sets equal PML 2.9's.
- **`where`** masks embeddings (rows): masked rows are neither anchors nor positives nor negatives.
- **Many devices**: losses with `axis_name=` gather the global batch inside `shard_map`/`pmap`
  (see the [data-parallel guide](../guides/data-parallel.md)); PML uses `DistributedLossWrapper`.
- **Cross-batch memory** is explicit state (`memory=`), not a module attribute.

Entries whose values are checked against PML 2.9:""",
    ),
    "torchjd-libmtl": (
        "Migrating from torchjd and LibMTL",
        r"torchjd|LibMTL",
        """torchjd aggregators take the Jacobian (one row per loss) and return one gradient; LibMTL weighting
methods reweight losses inside a trainer. In lossjax both are optax transforms:

- **Aggregators** (`upgrad`, `mgda`, `pcgrad`, `cagrad`, `nash_mtl` ...): `tx.update(per_loss_grads,
  state, params)` where `per_loss_grads` is the parameter pytree with the losses stacked on a leading
  axis (`jax.jacrev` of a vector of losses, or `lossjax.multiloss`), returning the combined gradient;
  chain an optimizer after them.
- **Loss weighting** (`uncertainty_weighting`, `dwa`, `famo`, `gradnorm`, `rlw`): the same call plus
  the update-time arguments `lossjax describe NAME` lists (`losses=`, `key=` ...); learned weights are
  transform state.
- **Weights** (torchjd's `Weighting` classes): every aggregator's state is an `AggregatorState`;
  `state.weights` are the per-loss weights of the last update (what torchjd's `XWeighting` returns for
  the Gramian; `update == sum_i weights_i g_i` for the linear methods), `state.inner` the method's state.
  `cr_mogm(base=...)` is torchjd's `CRMOGMWeighting` around any linear aggregator.
- **Order and randomness**: `pcgrad` projects in a fixed order by default (`shuffle=True` for torchjd's
  random order; then pass `key=` per call, or `seed=` to the factory for a key kept in the state).
- **Two batches** (torchjd's `MoDoWeighting`, `SDMGradWeighting` on `J_1 J_2^T`): `modo`, `sdmgrad` take
  the independent batches' per-loss gradients as `updates_a=`, `updates_b=` and combine `updates`.
- **Solvers** are JAX (no cvxpy/quadprog): results match the references to the tolerance in
  `tests/reference/README.md`.

Entries whose values are checked against torchjd 0.18 / LibMTL:""",
    ),
    "rax": (
        "Migrating from rax",
        r"rax ",
        """lossjax's ranking losses follow rax 0.4's formulas and argument names (`scores`, `labels`, `where`,
`weights`, `segments`). Differences:

- **Reduction**: rax losses return a scalar (`reduce_fn=jnp.mean` over lists); lossjax returns the
  loss **per list** (`[...]`); reduce it with `lossjax.masked_mean`.
- **`where`** is rax's item mask `[..., list_size]`, or a list mask of the leading axes.
- **Lambda weights** are arguments of the pairwise losses (`rax.*_lambdaweight` equivalents).
- **Metrics** (`lossjax.metrics`: NDCG, MRR, precision, recall, OPA ...) are rax's `*_metric`.

Entries whose values are checked against rax 0.4.0:""",
    ),
}


REPO = "https://github.com/lossjax/lossjax/blob/main/"


def site_pages() -> dict[str, str]:
    """``{path under docs/: markdown}``: the home page from the README, the benchmark tables from RESULTS.md."""
    readme = (ROOT / "README.md").read_text()
    readme = re.sub(r"\]\((?!https?:)([^)#]+)\)", lambda m: f"]({REPO}{m.group(1)})", readme)
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        readme = readme.replace(f"| `{nb.stem}` |", f"| [`{nb.stem}`](notebooks/{nb.stem}.md) |")
    readme = readme.replace("`benchmarks/RESULTS.md`", "[the benchmark tables](benchmarks.md)")
    note = "<!-- generated from README.md by tools/gen_api_docs.py: edit the README -->\n\n"
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    results = re.sub(r"\]\((?!https?:)([^)#]+)\)", lambda m: f"]({REPO}benchmarks/{m.group(1)})", results)
    bnote = "<!-- generated from benchmarks/RESULTS.md by tools/gen_api_docs.py -->\n\n"
    return {"index.md": note + readme, "benchmarks.md": bnote + results}


def migration_pages() -> dict[str, str]:
    """``{file name: markdown}`` for the migration pages (prose plus the name map from the registry)."""
    import lossjax
    from lossjax import registry

    out = {}
    for page, (title, pattern, prose) in MIGRATIONS.items():
        lines = [f"# {title}", "", prose, "", "| lossjax | family | reference |", "|---|---|---|"]
        for name in lossjax.available():
            e = registry.get_entry(name)
            if re.search(pattern, e.reference or ""):
                ref = (e.reference or "").replace("|", "/")
                lines.append(f"| [`{name}`](../api/{e.family}.md) | {e.family} | {ref} |")
        out[f"{page}.md"] = "\n".join(lines) + "\n"
    return out


def _arxiv_link(paper: str) -> str:
    m = re.search(r"arXiv:\s*(\d{4}\.\d{4,5})", paper or "")
    if not m:
        return (paper or "").replace("|", "/")
    title = paper.split("(")[0].strip().replace("|", "/")
    return f"[{title}](https://arxiv.org/abs/{m.group(1)})"


def _summary(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0].replace("|", "/") if doc.strip() else ""


def _home(package: str, name: str, obj) -> object:
    """The module defining a public name (a constant has no ``__module__``: the family module holding it)."""
    module = getattr(obj, "__module__", None)
    if module:
        return importlib.import_module(module)
    pkg = importlib.import_module(f"lossjax.{package}")
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        mod = importlib.import_module(f"lossjax.{package}.{info.name}")
        if getattr(mod, "FAMILY", None) and getattr(mod, name, None) is obj:
            return mod
    return pkg


def pages() -> dict[str, str]:
    """``{file name: markdown}`` for every API page."""
    sys.path.insert(0, str(ROOT))
    import lossjax
    from lossjax import registry

    out: dict[str, str] = {}
    families: dict[str, list[tuple[str, str, object]]] = {}
    for package in ("losses", "transforms"):
        ns = importlib.import_module(f"lossjax.{package}")
        for name in ns.__all__:
            obj = getattr(ns, name)
            mod = _home(package, name, obj)
            family = getattr(mod, "FAMILY", None) or f"{package}-shared"  # helpers of a shared private module
            families.setdefault(family, []).append((package, name, obj))
    index = ["# API reference", "", "Every public name, by family (losses and transforms) and by module.", ""]
    index += ["| page | what |", "|---|---|"]
    for family in sorted(families):
        items = sorted(families[family], key=lambda t: t[1])
        lines = [f"# `{family}`", ""]
        entries = [registry.entry_of(obj) for _, _, obj in items]
        registered = [e for e in entries if e is not None]
        lines += [
            f"`lossjax list --family {family}` lists its {len(registered)} registered entries;",
            "every one passes the conformance suite (`lossjax check NAME`).",
            "",
            "| name | kind | paper |",
            "|---|---|---|",
        ]
        for (package, name, obj), e in zip(items, entries, strict=True):
            kind = e.kind if e is not None else ("class" if inspect.isclass(obj) else "helper")
            paper = _arxiv_link(e.paper) if e is not None else ""
            lines.append(f"| [`{name}`](#lossjax.{package}.{name}) | {kind} | {paper} |")
        lines.append("")
        for package, name, _ in items:
            lines += [f"::: lossjax.{package}.{name}", ""]
        out[f"{family}.md"] = "\n".join(lines)
        index.append(f"| [{family}]({family}.md) | {len(registered)} registered entries |")
    for page, (module, what) in MODULE_PAGES.items():
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        names = (
            sorted(mod.__all__)
            if module != "lossjax"
            else sorted(n for n in lossjax.__all__ if not inspect.ismodule(getattr(lossjax, n)))
        )
        lines = [f"# `{module}`", "", what, ""]
        for name in names:
            lines += [f"::: {module}.{name}", ""]
        out[f"{page}.md"] = "\n".join(lines)
        index.append(f"| [{page}]({page}.md) | {what} |")
    out["index.md"] = "\n".join(index) + "\n"
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="exit 1 if docs/api is out of date")
    args = p.parse_args(argv)
    want = pages()
    migration = migration_pages()
    site = site_pages()
    if args.check:
        have = {f.name: f.read_text() for f in API.glob("*.md")} if API.exists() else {}
        stale = sorted(set(want) ^ set(have) | {k for k in want if have.get(k) != want[k]})
        stale += [
            f"migration/{k}"
            for k, v in migration.items()
            if not (MIGRATION / k).exists() or (MIGRATION / k).read_text() != v
        ]
        if stale:
            print(f"docs/api is out of date ({', '.join(stale)}): run python tools/gen_api_docs.py")
            return 1
        return 0
    for name, text in site.items():
        (ROOT / "docs" / name).write_text(text)
    MIGRATION.mkdir(parents=True, exist_ok=True)
    for name, text in migration.items():
        (MIGRATION / name).write_text(text)
    API.mkdir(parents=True, exist_ok=True)
    for f in API.glob("*.md"):
        if f.name not in want:
            f.unlink()
    for name, text in want.items():
        (API / name).write_text(text)
    print(f"wrote {len(want)} pages to {API.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
