"""Expected outputs of the margins family's conformance value cases (``lossjax/expected/margins.json``).

Independent float64 implementations, never lossjax (run in the reference environment)::

    python tests/reference/dump_inputs.py --family margins        # the inputs (lossjax env)
    python tests/reference/make_expected_margins.py               # torch 2.13.0, pytorch-metric-learning 2.9.0

Sources (torch float64 autograd gives the gradients of ``sum(cotangent * loss)``):

- pytorch-metric-learning 2.9.0 called: ``NormalizedSoftmaxLoss`` (temperature = 1 / scale), ``CosFaceLoss``,
  ``ArcFaceLoss`` and ``SphereFaceLoss`` on the sample (PML's class weights ``W [D, C]`` replaced by the
  proxies), cross-checked against the ports below to 1e-12;
- ports pinned to upstream files:
  insightface ``recognition/arcface_torch/losses.py@2e2e8c97c7bc3e79a4d5403ae12cd5dd2bd69658`` (``ArcFace``:
  ``cos(theta + m)`` through ``sqrt(1 - cos^2)``, the threshold branch and ``easy_margin``); the combined margin
  ``cos(m1 theta + m2) - m3`` (insightface's ``CombinedMarginLoss``; for ``m1 != 1`` continued past ``pi`` as
  SphereFace's ``(-1)^k cos(.) - 2k``); mk-minchul/AdaFace ``head.py@9cb981642eb7b579487bfadb0ee9ad8fc3772b74``
  (``AdaFace.forward``); ydwen/opensphere
  ``model/head/sphereface2.py@f220a2c314890feb8b52a10c57483e2117b859a1``; insightface ``partial_fc.py``
  (positive classes + the top uniform draws, drawn with ``jax.random.uniform`` from the case's key, float32,
  as the sampling contract says);
- the documented guard at the edges: where the angle is computed from the cosine (``sqrt(1 - c^2)``,
  ``arccos``), the target cosine is clamped to ``|c| <= float32(1 - 1e-7)`` (lossjax's documented clamp; at
  ``|c| = 1`` the upstream formulas have an infinite derivative), so the edge rows at exactly +-1 have a zero
  gradient through the target angle (there the gradient of the cosine itself is 0 anyway). SphereFace's
  integer margins go through the Chebyshev polynomial ``T_m(c)`` (as PML's ``LargeMarginSoftmaxLoss`` does)
  and need no clamp; ``k`` is taken from inside ``[0, pi]`` (at ``theta = pi`` exactly, ``k = m - 1``).
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expected_io as E

FAMILY = "margins"
torch.set_default_dtype(torch.float64)
LIM = float(np.float32(1 - 1e-7))  # lossjax's clamp, as rounded to float32
PML = "pytorch-metric-learning 2.9.0"
INSIGHTFACE = "deepinsight/insightface recognition/arcface_torch/losses.py@2e2e8c97c7bc3e79a4d5403ae12cd5dd2bd69658"


def _cos(x, w):
    return F.normalize(x, dim=1) @ F.normalize(w, dim=1).T


def _ce(logits, y):
    return F.cross_entropy(logits, y, reduction="none")


def _replace(cos, y, target):
    onehot = F.one_hot(y, cos.shape[1]).to(cos.dtype)
    return cos * (1 - onehot) + onehot * target[:, None]


def combined_target(c, m1=1.0, m2=0.0, m3=0.0, easy=False):
    """The margin target cosine psi(c), insightface-style, with the documented clamp."""
    if m1 == 1 and m2 == 0:
        return c - m3
    cc = torch.clamp(c, -LIM, LIM)
    if m1 == 1:  # insightface ArcFace: cos(theta + m) = c cos m - sin(theta) sin m
        sin = torch.sqrt(1.0 - cc * cc)
        phi = cc * math.cos(m2) - sin * math.sin(m2)
        if easy:
            phi = torch.where(c > 0, phi, c)
        else:
            phi = torch.where(c > math.cos(math.pi - m2), phi, c - math.sin(math.pi - m2) * m2)
        return phi - m3
    a = m1 * torch.acos(cc) + m2
    k = torch.floor(a.detach() / math.pi)
    return (1 - 2 * torch.remainder(k, 2)) * torch.cos(a) - 2 * k - m3


def chebyshev(c, m):
    t0, t1 = torch.ones_like(c), c
    if m == 0:
        return t0
    for _ in range(m - 1):
        t0, t1 = t1, 2 * c * t1 - t0
    return t1


def sphereface_target(c, m):
    if float(m).is_integer():
        theta = torch.acos(torch.clamp(c.detach(), -1, 1))
        k = torch.clamp(torch.floor(m * theta / math.pi), max=m - 1)
        return (1 - 2 * torch.remainder(k, 2)) * chebyshev(c, int(m)) - 2 * k
    return combined_target(c, m1=m)


# ------------------------------ the references --------------------------------


def ref_normalized_softmax(x, y, w, scale=20.0):
    return _ce(scale * _cos(x, w), y)


def ref_cosface(x, y, w, scale=64.0, margin=0.35):
    cos = _cos(x, w)
    return _ce(scale * _replace(cos, y, cos.gather(1, y[:, None])[:, 0] - margin), y)


def ref_arcface(x, y, w, scale=64.0, margin=0.5, easy_margin=False):
    cos = _cos(x, w)
    t = combined_target(cos.gather(1, y[:, None])[:, 0], m2=margin, easy=easy_margin)
    return _ce(scale * _replace(cos, y, t), y)


def ref_additive(
    x, y, w, scale=64.0, multiplicative_margin=1.0, angular_margin=0.0, additive_margin=0.35, easy_margin=False
):
    cos = _cos(x, w)
    t = combined_target(
        cos.gather(1, y[:, None])[:, 0], multiplicative_margin, angular_margin, additive_margin, easy_margin
    )
    return _ce(scale * _replace(cos, y, t), y)


def ref_sphereface(x, y, w, margin=4.0, scale=1.0):
    cos = _cos(x, w)
    t = sphereface_target(cos.gather(1, y[:, None])[:, 0], margin)
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return _ce(scale * norms * _replace(cos, y, t), y)


def ref_adaface(x, y, w, state, margin=0.4, h=0.333, scale=64.0, decay=0.99):
    # mk-minchul/AdaFace head.py::AdaFace.forward; embbedings = normalize(x), norms = ||x|| (the backbone's outputs).
    eps = 1e-3
    t_alpha = 1.0 - decay
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    embbedings = F.normalize(x, dim=1)
    kernel_norm = F.normalize(w.T, dim=0)
    cosine = torch.mm(embbedings, kernel_norm).clamp(-1 + eps, 1 - eps)
    safe_norms = torch.clip(norms, min=0.001, max=100).clone().detach()
    with torch.no_grad():
        mean = safe_norms.mean().detach()
        std = safe_norms.std().detach()
        batch_mean = mean * t_alpha + (1 - t_alpha) * torch.as_tensor(state["batch_mean"])
        batch_std = std * t_alpha + (1 - t_alpha) * torch.as_tensor(state["batch_std"])
    margin_scaler = torch.clip((safe_norms - batch_mean) / (batch_std + eps) * h, -1, 1)
    m_arc = F.one_hot(y, cosine.shape[1]).to(cosine.dtype) * (margin * margin_scaler * -1)
    theta_m = torch.clip(cosine.acos() + m_arc, min=eps, max=math.pi - eps)
    cosine = theta_m.cos() - F.one_hot(y, cosine.shape[1]).to(cosine.dtype) * (margin + margin * margin_scaler)
    loss = _ce(cosine * scale, y)
    aux = {"namedtuple": "AdaFaceState", "fields": {"batch_mean": batch_mean, "batch_std": batch_std}}
    return loss, aux


def ref_sphereface2(x, y, w, alpha=0.7, scale=40.0, margin=0.4, t=3.0, loss_weight=50.0, variant="C"):
    # ydwen/opensphere model/head/sphereface2.py::SphereFace2.forward, per example: the sum over classes / C
    # (the reference's batch mean is the mean of these rows). The adjustment d_theta carries no gradient.
    r, m, tpow, lw, magn_type = scale, margin, t, loss_weight, variant
    num_class = w.shape[0]
    z = alpha / ((1.0 - alpha) * (num_class - 1.0))
    if magn_type == "C":
        ay = r * (2.0 * 0.5**tpow - 1.0 - m)
        ai = r * (2.0 * 0.5**tpow - 1.0 + m)
    elif magn_type == "A":
        theta_y = min(math.pi, math.pi / 2.0 + m)
        ay = r * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** tpow - 1.0)
        ai = r * (2.0 * 0.5**tpow - 1.0)
    else:
        theta_y = min(math.pi, m * math.pi / 2.0)
        ay = r * (2.0 * ((math.cos(theta_y) + 1.0) / 2.0) ** tpow - 1.0)
        ai = r * (2.0 * 0.5**tpow - 1.0)
    temp = (1.0 - z) ** 2 + 4.0 * z * math.exp(ay - ai)
    bias = math.log(2.0 * z) - ai - math.log(1.0 - z + math.sqrt(temp))
    cos_theta = F.normalize(x, dim=1).mm(F.normalize(w.T, dim=0))
    one_hot = F.one_hot(y, num_class).to(cos_theta.dtype)
    with torch.no_grad():
        if magn_type == "C":
            g = 2.0 * ((cos_theta + 1.0) / 2.0).pow(tpow) - 1.0
            g = g - m * (2.0 * one_hot - 1.0)
        else:
            th = torch.acos(cos_theta.clamp(-1 + 1e-5, 1.0 - 1e-5))
            th = th + one_hot * m if magn_type == "A" else th * torch.where(one_hot > 0, m, 1.0)
            g = torch.cos(th.clamp(1e-5, 3.14159))
            g = 2.0 * ((g + 1.0) / 2.0).pow(tpow) - 1.0
        d_theta = g - cos_theta
    logits = r * (cos_theta + d_theta) + bias
    weight = alpha * one_hot + (1.0 - alpha) * (1.0 - one_hot)
    weight = lw * num_class / r * weight
    loss = F.binary_cross_entropy_with_logits(logits, one_hot, weight=weight, reduction="none")
    return loss.sum(1) / num_class


def _sampled_classes(key_data, labels, num_classes, sample_rate):
    import jax

    key = jax.random.wrap_key_data(np.asarray(key_data, np.uint32))
    draw = np.asarray(jax.random.uniform(key, (num_classes,), dtype=np.float32), np.float64)
    score = np.where(np.isin(np.arange(num_classes), labels), 2.0, draw)
    k = min(num_classes, max(1, math.ceil(sample_rate * num_classes)))
    return np.sort(np.argsort(-score, kind="stable")[:k])


def ref_partial_fc(
    x, y, w, key, sample_rate=0.1, scale=64.0, multiplicative_margin=1.0, angular_margin=0.5, additive_margin=0.0,
    easy_margin=False,
):  # fmt: skip
    idx = _sampled_classes(key["prng_key_data"], y.numpy(), w.shape[0], sample_rate)
    sub = w[torch.as_tensor(idx)]
    y_sub = torch.as_tensor(np.searchsorted(idx, y.numpy()))
    return ref_additive(x, y_sub, sub, scale, multiplicative_margin, angular_margin, additive_margin, easy_margin)


REFERENCES = {
    "normalized_softmax_loss": (ref_normalized_softmax, f"{PML} NormalizedSoftmaxLoss (sample); torch port (edges)"),
    "cosface_loss": (ref_cosface, f"{PML} CosFaceLoss (sample); insightface CosFace port ({INSIGHTFACE})"),
    "arcface_loss": (
        ref_arcface,
        f"{PML} ArcFaceLoss (sample); insightface ArcFace port ({INSIGHTFACE}), easy_margin and the edges with "
        "the documented clamp |cos| <= float32(1 - 1e-7)",
    ),
    "additive_margin_softmax": (
        ref_additive,
        f"insightface combined margin cos(m1 theta + m2) - m3 (port of {INSIGHTFACE} ArcFace + "
        "CombinedMarginLoss), SphereFace's continuation past pi for m1 != 1, clamp |cos| <= float32(1 - 1e-7)",
    ),
    "sphereface_loss": (
        ref_sphereface,
        f"{PML} SphereFaceLoss (sample); Chebyshev T_m(cos) port of PML's LargeMarginSoftmaxLoss (edges)",
    ),
    "adaface_loss": (ref_adaface, "mk-minchul/AdaFace head.py@9cb981642eb7b579487bfadb0ee9ad8fc3772b74 (torch port)"),
    "sphereface2_loss": (
        ref_sphereface2,
        "ydwen/opensphere model/head/sphereface2.py@f220a2c314890feb8b52a10c57483e2117b859a1 (torch port)",
    ),
    "partial_fc_sampled_softmax": (
        ref_partial_fc,
        "deepinsight/insightface recognition/arcface_torch/partial_fc.py sampling (positives + top uniform draws "
        f"from jax.random.uniform(key, (C,), float32)) + the combined margin port ({INSIGHTFACE})",
    ),
}


def _set_plain(module, name, tensor):
    delattr(module, name)
    object.__setattr__(module, name, tensor)


def pml_value(name, x, y, w, kw):
    """The PML call on the same inputs (None where PML has no such loss or option)."""
    from pytorch_metric_learning import losses as pml
    from pytorch_metric_learning.reducers import DoNothingReducer

    c, d = w.shape
    common = {"num_classes": c, "embedding_size": d, "reducer": DoNothingReducer()}
    if name == "normalized_softmax_loss":
        loss = pml.NormalizedSoftmaxLoss(temperature=1.0 / kw.get("scale", 20.0), **common)
    elif name == "cosface_loss":
        loss = pml.CosFaceLoss(scale=kw.get("scale", 64.0), margin=kw.get("margin", 0.35), **common)
    elif name == "arcface_loss" and not kw.get("easy_margin", False):
        loss = pml.ArcFaceLoss(scale=kw.get("scale", 64.0), margin=math.degrees(kw.get("margin", 0.5)), **common)
    elif name == "sphereface_loss":
        loss = pml.SphereFaceLoss(margin=kw.get("margin", 4.0), scale=kw.get("scale", 1.0), **common)
    else:
        return None
    _set_plain(loss, "W", w.T)
    return loss(x, y)["loss"]["losses"]


def value_and_grads(name, args, kw, diff):
    fn = REFERENCES[name][0]
    x = torch.tensor(args[0], requires_grad=True)
    w = torch.tensor(args[2], requires_grad=True)
    y = torch.as_tensor(args[1]).long()
    out = fn(x, y, w, **kw)
    value, aux = out if isinstance(out, tuple) else (out, None)
    ct = torch.as_tensor(E.cotangent(tuple(value.shape)))
    grads = torch.autograd.grad((ct * value).sum(), [x, w])
    return value.detach().numpy(), [g.numpy() for g in grads], aux


def main() -> None:
    inputs = E.load_inputs(FAMILY)
    records, worst = {}, {}
    for name, entry in inputs.items():
        if name not in REFERENCES:
            print(f"skipped {name}: no reference here")
            continue
        assert entry["diff_argnums"] == [0, 2], name
        cases = []
        for case in entry["cases"]:
            args, kw = E.case_inputs(case)
            value, grads, aux = value_and_grads(name, args, kw, entry["diff_argnums"])
            assert np.all(np.isfinite(value)), (name, case["case"])
            if case["case"] == "sample":
                x, y, w = (torch.as_tensor(args[0]), torch.as_tensor(args[1]).long(), torch.as_tensor(args[2]))
                ref = pml_value(name, x, y, w, kw)
                if ref is not None:
                    err = float(np.max(np.abs(ref.detach().numpy() - value) / np.maximum(np.abs(value), 1e-12)))
                    worst[name] = max(worst.get(name, 0.0), err)
                    assert err < 1e-9, (name, kw, err)
            cases.append(E.expected_case(case, value, grads, aux))
        records[name] = {"source": REFERENCES[name][1], "cases": cases}
    path = E.write_expected(FAMILY, records)
    print(f"wrote {path}: {len(records)} entries; PML cross-checks (max rel. diff): {worst}")


if __name__ == "__main__":
    main()
