"""Golden values for the ranking family (lossjax/losses/_ranking.py) and lossjax.metrics.

Run by hand in the reference environment (never at test time, never imports lossjax)::

    python tests/reference/make_ranking.py          # writes tests/reference/ranking.json

References, all in float64:

- rax 0.4.0 (``pip install rax==0.4.0``) for every rax loss, metric, lambda weight
  and transformation. rax 0.4.0 uses ``jax.util.wraps``, which jax 0.10 removed:
  :func:`_shim_rax` installs a two-line stand-in (``functools.wraps``) before the
  import. Under ``jax_enable_x64`` jax draws float64 uniforms/Gumbels from a
  key, lossjax float32 ones whatever the dtype; the shim draws float32 and casts,
  so both sides see the same tie-breaking and noise.
- optax 0.2.8 ``optax.losses.ranking_softmax_loss``.
- torch 2.13.0 re-implementations written from (not copied from) the authors' code:
  allRank@c88475661cb72db292d13283fdbc4f2ae6498ee4 ``allrank/models/losses/neuralNDCG.py``
  and ``loss_utils.py`` (NeuralSort + Sinkhorn, per list);
  IR-Benchmark@1dd8de9b6335b412b152aaf0e615e2bef3d6a95b ``src/itemrec/optimizer/optim_PSL.py`` (PSL1);
  RecBox@99d488e534e541ba828e5cb8cb58b5597a8099e3 ``matchbox/pytorch/losses/cosine_contrastive_loss.py``;
  unbiased-implicit-rec@414b98bdf1f2ba879cb0cb3a78a4f851522d920c ``src/utils/models.py`` (weighted_ce,
  with ``log(sigmoid(z))`` computed as ``logsigmoid(z)``).

Per-list convention: lossjax returns one value per list, rax's value for that
list alone. For losses/metrics without a key the reference is
``jax.vmap(rax_fn)`` (rax's default mean within one list); with a key (random
tie-breaking, Gumbel noise drawn for the whole batch) it is rax's batch call
with ``reduce_fn=None`` (per list; with segments the mean over each list's
first-item values).

The functions here are imported (no side effects) by make_expected_ranking.py.
"""

from __future__ import annotations

import functools
import json
import pathlib
import types

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


# ----------------------------------- rax set-up -----------------------------------


def _shim_rax():
    import jax

    jax.config.update("jax_enable_x64", True)
    if "util" not in vars(jax) or not hasattr(jax.util, "wraps"):

        def wraps(wrapped, namestr=None, docstr=None, **_):
            def deco(f):
                return functools.wraps(wrapped)(f)

            return deco

        jax.util = types.SimpleNamespace(wraps=wraps)
    import jax.numpy as jnp

    if not getattr(jax.random, "_lossjax_f32", False):
        uniform, gumbel = jax.random.uniform, jax.random.gumbel

        def uniform32(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
            return uniform(key, shape, jnp.float32, minval, maxval).astype(jnp.float64)

        def gumbel32(key, shape=(), dtype=None, **kw):
            return gumbel(key, shape, jnp.float32, **kw).astype(jnp.float64)

        jax.random.uniform, jax.random.gumbel = uniform32, gumbel32
        jax.random._lossjax_f32 = True
    import rax

    return rax


rax = _shim_rax()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from rax._src.segment_utils import first_item_segment_mask  # noqa: E402

RAX = f"rax {rax.__version__}"


def cotangent(shape) -> np.ndarray:
    n = int(np.prod(shape)) if len(shape) else 1
    ct = 1.0 + 0.5 * np.cos(np.arange(n, dtype=np.float64))
    return ct.reshape(shape) if len(shape) else np.asarray(1.0)


def _arr(x):
    return None if x is None else jnp.asarray(x)


def rax_per_list(fn, scores, labels, *, where=None, weights=None, segments=None, key=None, batch=False, **hp):
    """rax's value of every list: vmap of the default (mean) call, or the batch call with ``reduce_fn=None``."""
    arrays = {"where": _arr(where), "weights": _arr(weights), "segments": _arr(segments)}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    if key is not None or batch:
        if key is not None:
            hp["key"] = key
        out = fn(scores, labels, reduce_fn=None, **arrays, **hp)
        if segments is None:
            return out
        first = first_item_segment_mask(arrays["segments"], where=arrays.get("where"))
        return jnp.sum(out, axis=-1) / jnp.maximum(jnp.sum(first, axis=-1), 1)
    names = sorted(arrays)

    def one(s, y, *vals):
        return fn(s, y, **dict(zip(names, vals, strict=True)), **hp)

    return jax.vmap(one)(scores, labels, *[arrays[k] for k in names])


def value_and_grad(f, scores, *, central: bool = False):
    """``f(scores)`` and the gradient of ``sum(cotangent * f(scores))`` (float64).

    ``central=True``: the gradient by central differences of the value (step 1e-6), for rax
    functions whose autodiff is wrong (ListMLE: rax's ``logcumsumexp`` halves gradients at tied
    scores through ``jnp.minimum`` and gives NaN with segments and a mask).
    """
    scores = jnp.asarray(scores, jnp.float64)
    out = f(scores)
    ct = jnp.asarray(cotangent(out.shape))
    if not central:
        grad = jax.grad(lambda s: jnp.sum(ct * f(s)))(scores)
        return np.asarray(out), np.asarray(grad)
    flat = np.asarray(scores).ravel()
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        hi, lo = flat.copy(), flat.copy()
        hi[i] += 1e-6
        lo[i] -= 1e-6
        fh = np.sum(cotangent(out.shape) * np.asarray(f(jnp.asarray(hi.reshape(scores.shape)))))
        fl = np.sum(cotangent(out.shape) * np.asarray(f(jnp.asarray(lo.reshape(scores.shape)))))
        grad[i] = (fh - fl) / 2e-6
    return np.asarray(out), grad.reshape(scores.shape)


# ----------------------------------- rax losses -----------------------------------


def per_segment(lambdaweight_fn, max_segments: int = 3):
    """A rax lambda weight computed segment by segment (``where`` restricted to each segment).

    rax 0.4.0's normalized DCG lambda weights with ``segments`` divide only the first item of each
    segment by the ideal DCG (``dcg_metric(reduce_fn=None)`` zeroes the other items, which then get
    1). Restricting ``where`` to one segment at a time gives every item its segment's ideal DCG and
    the within-segment ranks: the intended weights, built from rax's own function.
    """

    def fixed(scores, labels, *, where=None, segments=None, weights=None):
        if segments is None:
            return lambdaweight_fn(scores, labels, where=where, weights=weights)
        n = scores.shape[-1]
        valid = jnp.ones(scores.shape, bool) if where is None else where
        total = jnp.zeros((*scores.shape[:-1], n, n))
        for k in range(max_segments):
            wk = valid & (segments == k)
            out = lambdaweight_fn(scores, labels, where=wk, weights=weights).reshape(total.shape)
            total = total + jnp.where(wk[..., :, None] & wk[..., None, :], out, 0.0)
        return total.reshape((*scores.shape[:-1], n * n))

    return fixed


LAMBDAWEIGHTS = {
    "labeldiff": rax.labeldiff_lambdaweight,
    "dcg": rax.dcg_lambdaweight,
    "ndcg": functools.partial(rax.dcg_lambdaweight, normalize=True),
    "dcg2": rax.dcg2_lambdaweight,
    "ndcg2": functools.partial(rax.dcg2_lambdaweight, normalize=True),
    # TF-Ranking's create_reciprocal_rank_lambda_weight, in rax's terms.
    "mrr": functools.partial(rax.dcg_lambdaweight, normalize=True, gain_fn=lambda y: y, discount_fn=lambda r: 1.0 / r),
}
for _name in ("ndcg", "ndcg2", "mrr"):
    LAMBDAWEIGHTS[_name] = per_segment(LAMBDAWEIGHTS[_name])

GAINS = {"exponential": lambda y: jnp.power(2.0, y) - 1.0, "linear": lambda y: y}
DISCOUNTS = {"log2": lambda r: 1.0 / jnp.log2(r + 1), "reciprocal": lambda r: 1.0 / r}


def _gain(g):
    return None if g is None else GAINS[g]


def rax_loss(name: str, hp: dict):
    """``(rax function, its keyword arguments, batch?)`` for a lossjax ranking loss and its hyperparameters."""
    hp = dict(hp)
    lw = hp.pop("lambdaweight", None)
    extra = {} if lw is None else {"lambdaweight_fn": LAMBDAWEIGHTS[lw]}
    if name == "ranking_softmax_loss":
        if hp.pop("normalize_labels", False):
            extra["label_fn"] = rax.utils.normalize_probabilities
        return rax.softmax_loss, extra
    if name == "poly1_softmax_loss":
        return rax.poly1_softmax_loss, {"epsilon": hp.pop("poly_coefficient", 1.0)}
    if name == "listmle_loss":
        return rax.listmle_loss, {}
    if name == "unique_softmax_loss":
        return rax.unique_softmax_loss, {"gain_fn": _gain(hp.pop("gain", "exponential"))}
    if name in ("pairwise_logistic_loss", "pairwise_soft_zero_one_loss", "pairwise_mse_loss"):
        return getattr(rax, name), extra
    if name == "pairwise_hinge_loss":
        margin = hp.pop("margin", 1.0)
        if margin == 1.0:
            return rax.pairwise_hinge_loss, extra

        def hinge(scores, labels, **kw):
            def pair(ds, dy):
                return jax.nn.relu(margin - ds), dy > 0

            return rax._src.losses.pairwise_loss(scores, labels, pair_loss_fn=pair, **kw)

        return hinge, extra
    if name == "pairwise_qr_loss":
        return rax.pairwise_qr_loss, {
            **extra,
            "tau": hp.pop("quantile", 0.5),
            "squared": hp.pop("squared", False),
        }
    if name in ("pointwise_sigmoid_loss", "pointwise_mse_loss"):
        return getattr(rax, name), {}
    if name == "approx_ndcg_loss":
        fn = rax.approx_t12n(rax.ndcg_metric, temperature=hp.pop("temperature", 1.0))
        return fn, {
            "topn": hp.pop("topn", None),
            "gain_fn": GAINS[hp.pop("gain", "exponential")],
            "discount_fn": DISCOUNTS[hp.pop("discount", "log2")],
        }
    if name == "approx_mrr_loss":
        fn = rax.approx_t12n(rax.mrr_metric, temperature=hp.pop("temperature", 1.0))
        return fn, {"topn": hp.pop("topn", None)}
    if name == "mann_whitney_auc_loss":

        def auc(scores, labels, **kw):
            return rax.pairwise_logistic_loss(scores, (labels > 0).astype(scores.dtype), **kw)

        return auc, {}
    raise KeyError(name)


# ------------------------------- NeuralNDCG (allRank) -------------------------------


def neural_ndcg_allrank(
    scores,
    labels,
    valid,
    *,
    temperature=1.0,
    topn=None,
    gain="exponential",
    variant="standard",
    tolerance=1e-6,
    max_iterations=50,
    epsilon=1e-10,
):
    """allRank's neuralNDCG / neuralNDCG_transposed for ONE list (torch, float64), padding moved to the end.

    Written from allrank/models/losses/neuralNDCG.py and loss_utils.py (deterministic NeuralSort,
    Sinkhorn scaling with tolerance and iteration cap, masked rows/columns, IDCG@k from the sorted
    labels; a list with IDCG 0 gives 0). NeuralSort is permutation-equivariant in the items, so moving
    padded items to the end (allRank's padding layout) does not change the value.
    """
    import torch

    s = scores if isinstance(scores, torch.Tensor) else torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    v = np.asarray(valid, bool)
    order = np.concatenate([np.nonzero(v)[0], np.nonzero(~v)[0]])
    s, y = s[order], y[order]
    mask = torch.as_tensor(~v[order])
    n = s.shape[0]
    k = n if topn is None else min(topn, n)
    nv = int((~mask).sum())
    # NeuralSort: P[r, i] = softmax_i(((n_valid + 1 - 2 (r + 1)) s_i - sum_k |s_i - s_k|) / tau).
    sm = s.masked_fill(mask, 0.0)
    a = (sm[:, None] - sm[None, :]).abs().masked_fill(mask[:, None] | mask[None, :], 0.0)
    b = a.sum(dim=1)
    scaling = torch.zeros(n, dtype=torch.float64)
    scaling[:nv] = nv + 1 - 2 * (torch.arange(nv, dtype=torch.float64) + 1)
    logits = scaling[:, None] * sm[None, :] - b[None, :]
    rmask = torch.arange(n) >= nv
    logits = logits.masked_fill(rmask[:, None] | mask[None, :], -float("inf"))
    logits = logits.masked_fill(rmask[:, None] & mask[None, :], 1.0)
    p = torch.softmax(logits / temperature, dim=-1)
    # Sinkhorn scaling (columns, then rows; stop when both sums are within tolerance).
    p = p.masked_fill(rmask[:, None] | mask[None, :], 0.0).masked_fill(rmask[:, None] & mask[None, :], 1.0)
    for _ in range(max_iterations):
        p = p / p.sum(dim=0, keepdim=True).clamp(min=epsilon)
        p = p / p.sum(dim=1, keepdim=True).clamp(min=epsilon)
        if (p.sum(dim=1) - 1).abs().max() < tolerance and (p.sum(dim=0) - 1).abs().max() < tolerance:
            break
    p = p.masked_fill(rmask[:, None] | mask[None, :], 0.0)
    ym = y.masked_fill(mask, 0.0)
    g = torch.pow(2.0, ym) - 1.0 if gain == "exponential" else ym
    disc = 1.0 / torch.log2(torch.arange(n, dtype=torch.float64) + 2.0)
    disc[k:] = 0.0
    if variant == "standard":
        dcg = ((p @ g) * disc).sum()
    else:
        dcg = (g * (p.T @ disc)).sum()
    ideal = torch.sort(ym.masked_fill(mask, -float("inf")), descending=True).values
    ideal = torch.where(torch.isinf(ideal), torch.zeros_like(ideal), ideal)
    ig = torch.pow(2.0, ideal) - 1.0 if gain == "exponential" else ideal
    idcg = (ig * disc).sum()
    if float(idcg) == 0.0:
        return s.sum() * 0.0
    return -dcg / (idcg + epsilon)


def neural_ndcg_reference(scores, labels, valid=None, **hp):
    """Per-list values and score gradients (of ``sum(cotangent * out)``) of allRank's NeuralNDCG (torch)."""
    import torch

    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.float64)
    valid = np.ones(scores.shape, bool) if valid is None else np.broadcast_to(np.asarray(valid, bool), scores.shape)
    flat_s, flat_y, flat_v = (
        scores.reshape(-1, scores.shape[-1]),
        labels.reshape(-1, scores.shape[-1]),
        valid.reshape(-1, scores.shape[-1]),
    )
    ct = cotangent(scores.shape[:-1]).reshape(-1)
    values, grads = [], []
    for s, y, v, c in zip(flat_s, flat_y, flat_v, ct, strict=True):
        st = torch.tensor(s, requires_grad=True)
        if not v.any():
            values.append(0.0)
            grads.append(np.zeros_like(s))
            continue
        val = neural_ndcg_allrank(st, y, v, **hp)
        g = torch.autograd.grad(c * val, st, allow_unused=True)[0]
        values.append(float(val.detach()))
        grads.append(np.zeros_like(s) if g is None else g.numpy())
    return np.asarray(values).reshape(scores.shape[:-1]), np.asarray(grads).reshape(scores.shape)


# --------------------------- retrieval losses (torch ports) ---------------------------


def _cosines(torch, a, p, n):
    import torch.nn.functional as F

    a, p, n = F.normalize(a, dim=-1), F.normalize(p, dim=-1), F.normalize(n, dim=-1)
    return (a * p).sum(-1), torch.einsum("bd,bkd->bk", a, n)


def psl_reference(anchors, positives, negatives, *, temperature=2.0, robust_temperature=1.0, activation="tanh"):
    """IR-Benchmark's PSLOptimizer.cal_loss (method=1) per user, cosines as F.normalize(x) . F.normalize(y)."""
    import torch

    pos, neg = _cosines(torch, anchors, positives, negatives)
    d = (neg - pos[:, None]) / temperature
    if activation == "tanh":
        sigma = torch.log(torch.tanh(d) + 1)
    elif activation == "relu":
        sigma = torch.log(torch.relu(d + 1))
    else:
        sigma = torch.log(torch.atan(d) + 1)
    return torch.logsumexp(sigma / robust_temperature, dim=1)


def ccl_reference(anchors, positives, negatives, *, margin=0.0, negative_weight=None):
    """RecBox's CosineContrastiveLoss per user (before its batch mean) on cosine scores."""
    import torch

    pos, neg = _cosines(torch, anchors, positives, negatives)
    pos_loss = torch.relu(1 - pos)
    neg_loss = torch.relu(neg - margin)
    if negative_weight:
        return pos_loss + neg_loss.mean(dim=-1) * negative_weight
    return pos_loss + neg_loss.sum(dim=-1)


def relmf_reference(logits, labels, exposure_probs, *, min_propensity=0.0):
    """usaito's weighted_ce per example: -(y/theta) log p - (1 - y/theta) log(1 - p), theta >= M."""
    import torch
    import torch.nn.functional as F

    theta = torch.clamp(exposure_probs, min=min_propensity)
    r = labels / theta
    return -(r * F.logsigmoid(logits) + (1 - r) * F.logsigmoid(-logits))


def lol_reference(losses):
    """LoL: sum_{i<j} relu(L_j - L_i) per query (closed form)."""
    import torch

    k = losses.shape[-1]
    gaps = torch.relu(losses[:, None, :] - losses[:, :, None])
    later = torch.triu(torch.ones(k, k, dtype=torch.bool), diagonal=1)
    return (gaps * later).sum(dim=(-2, -1))


# ------------------------------------ golden cases ------------------------------------


def _inputs(seed=2024, b=3, n=6):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(b, n)) * 1.5
    labels = rng.integers(0, 5, size=(b, n)).astype(np.float64)
    labels[0, 1] = labels[0, 3]  # a tie in labels
    labels[2] = 0.0  # a list without relevant items
    where = np.ones((b, n), bool)
    where[0, [4, 5]] = False  # padding at the end
    where[1, [2]] = False  # a hole in the middle
    weights = rng.uniform(0.5, 2.0, size=(b, n))
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 2, 2], [0, 0, 1, 1, 1, 1]])
    ties = np.round(scores, 0)  # ties in scores
    return scores, labels, where, weights, segments, ties


def _case(name, hp, *, where=False, weights=False, segments=False, ties=False, key=None, labels_override=None):
    scores, labels, where_m, weights_m, segments_m, tied = _inputs()
    if labels_override is not None:
        labels = labels_override
    s = tied if ties else scores
    kw = {}
    if where:
        kw["where"] = where_m
    if weights:
        kw["weights"] = weights_m
    if segments:
        kw["segments"] = segments_m
    return {"name": name, "hp": hp, "scores": s, "labels": labels, "key": key, **kw}


def _loss_cases():
    base = dict(where=True)
    out = []
    for name in (
        "ranking_softmax_loss",
        "poly1_softmax_loss",
        "unique_softmax_loss",
        "pairwise_logistic_loss",
        "pairwise_hinge_loss",
        "pairwise_soft_zero_one_loss",
        "pairwise_mse_loss",
        "pairwise_qr_loss",
        "pointwise_sigmoid_loss",
        "pointwise_mse_loss",
        "approx_ndcg_loss",
        "approx_mrr_loss",
    ):
        takes_weights = name not in ("approx_mrr_loss",)
        out += [
            _case(name, {}),
            _case(name, {}, **base),
            _case(name, {}, ties=True),
            _case(name, {}, segments=True),
            _case(name, {}, segments=True, where=True),
        ]
        if takes_weights:
            out += [_case(name, {}, weights=True, where=True), _case(name, {}, weights=True, segments=True)]
    for lw in LAMBDAWEIGHTS:
        out += [
            _case("pairwise_logistic_loss", {"lambdaweight": lw}, where=True),
            _case("pairwise_hinge_loss", {"lambdaweight": lw}, weights=True, segments=True),
            _case("pairwise_soft_zero_one_loss", {"lambdaweight": lw}, ties=True, segments=True, where=True),
        ]
    out += [
        _case("ranking_softmax_loss", {"normalize_labels": True}, where=True, weights=True),
        _case("poly1_softmax_loss", {"poly_coefficient": 2.5}, where=True, segments=True),
        _case("unique_softmax_loss", {"gain": "linear"}, where=True),
        _case("unique_softmax_loss", {"gain": None}, weights=True),
        _case("pairwise_hinge_loss", {"margin": 0.3}, where=True),
        _case("pairwise_qr_loss", {"quantile": 0.8, "squared": True}, where=True, segments=True),
        _case("approx_ndcg_loss", {"topn": 3}, where=True),
        _case("approx_ndcg_loss", {"topn": 2, "temperature": 0.5}, segments=True, weights=True),
        _case("approx_ndcg_loss", {"gain": "linear", "discount": "reciprocal"}, where=True),
        _case("approx_mrr_loss", {"topn": 2, "temperature": 0.3}, where=True),
        _case("listmle_loss", {}),
        _case("listmle_loss", {}, where=True),
        _case("listmle_loss", {}, ties=True),
        _case("listmle_loss", {}, key=3),
        _case("listmle_loss", {}, key=4, where=True),
        _case("listmle_loss", {}, segments=True),
        _case("listmle_loss", {}, segments=True, where=True),
        _case("mann_whitney_auc_loss", {}),
        _case("mann_whitney_auc_loss", {}, where=True, segments=True),
        _case("mann_whitney_auc_loss", {}, ties=True),
    ]
    return out


def loss_reference(case):
    """Per-list values and score gradients of one golden loss case."""
    fn, kw = rax_loss(case["name"], case["hp"])
    key = None if case.get("key") is None else jax.random.key(case["key"])
    labels = jnp.asarray(case["labels"])

    def f(s):
        return rax_per_list(
            fn,
            s,
            labels,
            where=case.get("where"),
            weights=case.get("weights"),
            segments=case.get("segments"),
            key=key,
            **kw,
        )

    return value_and_grad(f, case["scores"], central=case["name"] == "listmle_loss")


METRICS = {
    "dcg": rax.dcg_metric,
    "ndcg": rax.ndcg_metric,
    "mrr": rax.mrr_metric,
    "precision": rax.precision_metric,
    "recall": rax.recall_metric,
    "average_precision": rax.ap_metric,
    "ordered_pair_accuracy": rax.opa_metric,
}


def _metric_cases():
    out = []
    for name in METRICS:
        seg_ok = name != "ordered_pair_accuracy"
        out += [_case(name, {}), _case(name, {}, where=True), _case(name, {}, ties=True)]
        if name != "ordered_pair_accuracy":
            out += [_case(name, {"topn": 3}, where=True), _case(name, {"topn": 1}, ties=True)]
            out += [_case(name, {}, ties=True, key=5), _case(name, {"topn": 2}, ties=True, key=6, where=True)]
        if seg_ok:
            out += [_case(name, {}, segments=True), _case(name, {"topn": 2}, segments=True, where=True)]
        else:  # rax's opa has no segments: compare with rax.segment_t12n(opa_metric)
            out += [_case(name, {}, segments=True), _case(name, {}, segments=True, where=True)]
    for name in ("dcg", "ndcg"):
        out += [
            _case(name, {}, weights=True, where=True),
            _case(name, {"gain": "linear", "discount": "reciprocal", "topn": 4}, weights=True, segments=True),
        ]
    # Segments of different sizes: the mean of per-segment OPA (1/1 and 0/3) differs from the pooled ratio.
    out.append(
        {
            "name": "ordered_pair_accuracy",
            "hp": {},
            "key": None,
            "scores": np.array([[2.0, 1.0, 0.0, 1.0, 2.0, 0.5]]),
            "labels": np.array([[1.0, 0.0, 0.0, 1.0, 2.0, 3.0]]),
            "segments": np.array([[0, 0, 1, 1, 1, 1]]),
        }
    )
    zero = _inputs()[1].copy()
    zero[:] = 0.0
    out += [_case(name, {}, labels_override=zero) for name in METRICS]
    return out


def metric_reference(case):
    fn = METRICS[case["name"]]
    hp = dict(case["hp"])
    if "gain" in hp:
        hp["gain_fn"] = GAINS[hp.pop("gain")]
    if "discount" in hp:
        hp["discount_fn"] = DISCOUNTS[hp.pop("discount")]
    if case["name"] == "ordered_pair_accuracy" and case.get("segments") is not None:
        fn = rax.segment_t12n(rax.opa_metric)
    key = None if case.get("key") is None else jax.random.key(case["key"])
    out = rax_per_list(
        fn,
        jnp.asarray(case["scores"]),
        jnp.asarray(case["labels"]),
        where=case.get("where"),
        weights=case.get("weights"),
        segments=case.get("segments"),
        key=key,
        **hp,
    )
    return np.asarray(out)


def _t12n_cases():
    out = []
    for t in ("approx", "bound"):
        for m in ("ndcg", "mrr", "dcg", "precision", "recall", "average_precision"):
            out.append(_case(m, {"t12n": t}, where=True))
            out.append(_case(m, {"t12n": t, "topn": 3}, segments=True))
    out.append(_case("ndcg", {"t12n": "approx", "temperature": 0.25}, weights=True))
    out += [
        _case("ranking_softmax_loss", {"t12n": "gumbel"}, key=11),
        _case("ranking_softmax_loss", {"t12n": "gumbel", "num_samples": 3, "beta": 0.5}, key=12, where=True),
        _case("ndcg", {"t12n": "gumbel_approx", "smoothing_factor": 1e-20}, key=13, where=True),
        _case("ndcg", {"t12n": "gumbel_approx", "num_samples": 4}, key=14, segments=True),
    ]
    return out


def t12n_reference(case):
    hp = dict(case["hp"])
    kind = hp.pop("t12n")
    key = None if case.get("key") is None else jax.random.key(case["key"])
    gumbel_kw = {k: hp.pop(k) for k in ("num_samples", "beta", "smoothing_factor") if k in hp}
    if "num_samples" in gumbel_kw:
        gumbel_kw["samples"] = gumbel_kw.pop("num_samples")
    if kind in ("approx", "bound"):
        metric = METRICS[case["name"]]
        fn = (
            rax.approx_t12n(metric, temperature=hp.pop("temperature", 1.0))
            if kind == "approx"
            else rax.bound_t12n(metric)
        )
        batch = False
    elif kind == "gumbel":
        fn = rax.gumbel_t12n(rax.softmax_loss, **gumbel_kw)
        batch = True
    else:
        fn = rax.gumbel_t12n(rax.approx_t12n(rax.ndcg_metric), **gumbel_kw)
        batch = True
    labels = jnp.asarray(case["labels"])
    if case.get("where") is not None:
        # Padded items carry label 0 here: rax's ap_metric sums precision over all items without its
        # mask, so under approximate ranks (a padded item has rank 1) a padded relevant label leaks in.
        labels = jnp.where(jnp.asarray(case["where"]), labels, 0.0)

    def f(s):
        if not batch:
            return rax_per_list(
                fn, s, labels, where=case.get("where"), weights=case.get("weights"), segments=case.get("segments"), **hp
            )
        arrays = {k: jnp.asarray(case[k]) for k in ("where", "weights", "segments") if case.get(k) is not None}
        out = fn(s, labels, key=key, reduce_fn=None, **arrays, **hp)  # [samples, B] or [samples, B, L]
        if "segments" in arrays:
            first = first_item_segment_mask(arrays["segments"], where=arrays.get("where"))
            out = jnp.sum(out, axis=-1) / jnp.maximum(jnp.sum(first, axis=-1), 1)
        return jnp.mean(out, axis=0)

    return value_and_grad(f, case["scores"])


def _lambdaweight_cases():
    out = []
    for lw in ("labeldiff", "dcg", "dcg2"):
        out += [_case(lw, {}, where=True), _case(lw, {}, segments=True, weights=True)]
    out += [
        _case("dcg", {"normalize": True, "topn": 3}, where=True),
        _case("dcg", {"gain": "linear", "discount": "reciprocal", "normalize": True}, ties=True),
        _case("dcg2", {"light_discount": True}, where=True),
        _case("dcg2", {"topn": 2, "normalize": True}, segments=True, where=True),
    ]
    return out


def lambdaweight_reference(case):
    hp = dict(case["hp"])
    if "gain" in hp:
        hp["gain_fn"] = GAINS[hp.pop("gain")]
    if "discount" in hp:
        hp["discount_fn"] = DISCOUNTS[hp.pop("discount")]
    fn = {"labeldiff": rax.labeldiff_lambdaweight, "dcg": rax.dcg_lambdaweight, "dcg2": rax.dcg2_lambdaweight}[
        case["name"]
    ]
    if hp.get("normalize"):
        fn = per_segment(functools.partial(fn, **hp))
        hp = {}
    arrays = {k: jnp.asarray(case[k]) for k in ("where", "weights", "segments") if case.get(k) is not None}
    out = fn(jnp.asarray(case["scores"]), jnp.asarray(case["labels"]), **arrays, **hp)
    n = case["scores"].shape[-1]
    return np.asarray(out).reshape((*case["scores"].shape[:-1], n, n))


def _neural_cases():
    scores, labels, where, _, _, ties = _inputs()
    return [
        {"name": "neural_ndcg_loss", "hp": hp, "scores": s, "labels": labels, **({"where": where} if w else {})}
        for hp, s, w in (
            ({}, scores, False),
            ({}, scores, True),
            ({}, ties, True),
            ({"variant": "transposed"}, scores, True),
            ({"temperature": 0.3, "topn": 3}, scores, True),
            ({"gain": "linear", "variant": "transposed", "topn": 4}, scores, False),
            ({"gain": "linear"}, ties, False),
        )
    ]


def _encode(x):
    if isinstance(x, np.ndarray):
        return {"dtype": str(x.dtype), "shape": list(x.shape), "data": x.ravel().tolist()}
    return x


def main():
    import optax
    import torch

    torch.set_default_dtype(torch.float64)
    data = {
        "losses": [],
        "metrics": [],
        "t12n": [],
        "lambdaweights": [],
        "neural_ndcg": [],
        "optax": [],
        "retrieval": [],
    }
    for case in _loss_cases():
        v, g = loss_reference(case)
        data["losses"].append({**case, "value": v, "grad": g})
    for case in _metric_cases():
        data["metrics"].append({**case, "value": metric_reference(case)})
    for case in _t12n_cases():
        v, g = t12n_reference(case)
        data["t12n"].append({**case, "value": v, "grad": g})
    for case in _lambdaweight_cases():
        data["lambdaweights"].append({**case, "value": lambdaweight_reference(case)})
    for case in _neural_cases():
        v, g = neural_ndcg_reference(case["scores"], case["labels"], case.get("where"), **case["hp"])
        data["neural_ndcg"].append({**case, "value": v, "grad": g})
    # optax's ranking_softmax_loss (per list: reduce_fn=None) against the same inputs.
    scores, labels, where, weights, _, _ = _inputs()
    for kw in ({}, {"where": where}, {"where": where, "weights": weights}):
        out = optax.losses.ranking_softmax_loss(
            jnp.asarray(scores), jnp.asarray(labels), reduce_fn=None, **{k: jnp.asarray(v) for k, v in kw.items()}
        )
        data["optax"].append(
            {
                "name": "ranking_softmax_loss",
                "hp": {},
                "scores": scores,
                "labels": labels,
                **kw,
                "value": np.asarray(out),
            }
        )
    # Retrieval losses (torch ports) with gradients wrt all three embeddings.
    rng = np.random.default_rng(7)
    a, p, n = rng.normal(size=(4, 5)), rng.normal(size=(4, 5)), rng.normal(size=(4, 6, 5))
    for name, ref, hps in (
        (
            "pairwise_softmax_loss",
            psl_reference,
            ({}, {"activation": "relu", "temperature": 3.0}, {"activation": "atan", "robust_temperature": 0.2}),
        ),
        ("cosine_contrastive_loss", ccl_reference, ({}, {"margin": 0.5}, {"margin": 0.2, "negative_weight": 3.0})),
    ):
        for hp in hps:
            ts = [torch.tensor(x, requires_grad=True) for x in (a, p, n)]
            out = ref(*ts, **hp)
            grads = torch.autograd.grad((torch.tensor(cotangent(out.shape)) * out).sum(), ts)
            data["retrieval"].append(
                {
                    "name": name,
                    "hp": hp,
                    "args": [a, p, n],
                    "value": out.detach().numpy(),
                    "grads": [g.numpy() for g in grads],
                }
            )
    z, y, th = rng.normal(size=(7,)) * 2, (rng.random(7) < 0.5).astype(float), rng.uniform(0.02, 1.0, size=(7,))
    for hp in ({}, {"min_propensity": 0.1}):
        ts = [torch.tensor(z, requires_grad=True)]
        out = relmf_reference(ts[0], torch.tensor(y), torch.tensor(th), **hp)
        grads = torch.autograd.grad((torch.tensor(cotangent(out.shape)) * out).sum(), ts)
        data["retrieval"].append(
            {
                "name": "unbiased_implicit_feedback_loss",
                "hp": hp,
                "args": [z, y, th],
                "value": out.detach().numpy(),
                "grads": [g.numpy() for g in grads],
            }
        )
    losses = rng.uniform(0.0, 2.0, size=(3, 5))
    ts = [torch.tensor(losses, requires_grad=True)]
    out = lol_reference(ts[0])
    grads = torch.autograd.grad((torch.tensor(cotangent(out.shape)) * out).sum(), ts)
    data["retrieval"].append(
        {
            "name": "loss_over_loss_regularizer",
            "hp": {},
            "args": [losses],
            "value": out.detach().numpy(),
            "grads": [g.numpy() for g in grads],
        }
    )

    def enc(obj):
        if isinstance(obj, dict):
            return {k: enc(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [enc(v) for v in obj]
        if isinstance(obj, np.ndarray):
            return _encode(obj)
        if isinstance(obj, (np.floating, np.integer)):
            return obj.item()
        return obj

    out = {
        "source": f"{RAX}; optax {optax.__version__}; torch {torch.__version__} ports (see make_ranking.py)",
        **enc(data),
    }
    path = HERE / "ranking.json"
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(path, {k: len(v) for k, v in data.items()})


if __name__ == "__main__":
    main()
