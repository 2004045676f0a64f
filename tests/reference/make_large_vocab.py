"""Golden values for ``linear_cross_entropy`` from PyTorch (float64 autograd).

The reference is the naive head: ``logits = hidden @ weight.T + bias``, optional
soft-capping ``c * tanh(logits / c)``, then ``torch.nn.functional.cross_entropy``
(``ignore_index``, ``label_smoothing``, ``reduction="none"``) plus the PaLM z-loss
``z * logsumexp(logits) ** 2`` on non-ignored tokens. Gradients of
``sum(cotangent * loss)`` (per-token cotangents) and of the masked mean come from
torch autograd in float64.

Run once (needs torch==2.13.0, CPU): ``python tests/reference/make_large_vocab.py``.
Writes ``tests/reference/large_vocab.json``; the tests read only the JSON.
"""

import json
import pathlib

import numpy as np
import torch

torch.set_default_dtype(torch.float64)

N, D, V = 12, 8, 50
CASES = {
    "plain": {},
    "ignore": {"ignore": True},
    "bias": {"bias": True},
    "label_smoothing": {"label_smoothing": 0.1},
    "z_loss": {"z_loss": 0.01},
    "softcap": {"logit_softcap": 3.0},
    "huge_logits": {"scale": 1000.0, "ignore": True},
    "all_options": {"bias": True, "ignore": True, "label_smoothing": 0.2, "z_loss": 0.01, "logit_softcap": 5.0},
}


def reference(hidden, weight, bias, labels, cot, *, label_smoothing=0.0, z_loss=0.0, logit_softcap=None):
    h = torch.tensor(hidden, requires_grad=True)
    w = torch.tensor(weight, requires_grad=True)
    b = torch.tensor(bias, requires_grad=True) if bias is not None else None
    y = torch.tensor(labels, dtype=torch.long)
    logits = h @ w.T
    if b is not None:
        logits = logits + b
    if logit_softcap is not None:
        logits = logit_softcap * torch.tanh(logits / logit_softcap)
    loss = torch.nn.functional.cross_entropy(
        logits, y, ignore_index=-100, label_smoothing=label_smoothing, reduction="none"
    )
    valid = y != -100
    lse = torch.where(valid, torch.logsumexp(logits, dim=-1), torch.zeros(()))
    loss = loss + z_loss * lse**2
    out = {"loss": loss.detach().numpy().tolist(), "lse": lse.detach().numpy().tolist()}
    params = [h, w] + ([b] if b is not None else [])
    names = ["dhidden", "dweight"] + (["dbias"] if b is not None else [])
    grads = torch.autograd.grad((loss * torch.tensor(cot)).sum(), params, retain_graph=True)
    out.update({k: g.numpy().tolist() for k, g in zip(names, grads)})
    mean = loss.sum() / valid.sum().clamp(min=1)
    out["mean"] = float(mean.detach())
    grads = torch.autograd.grad(mean, params)
    out.update({f"mean_{k}": g.numpy().tolist() for k, g in zip(names, grads)})
    return out


def main():
    rng = np.random.default_rng(7)
    cases = {}
    for name, opts in CASES.items():
        hidden = rng.normal(size=(N, D)) * opts.get("scale", 1.0)
        weight = rng.normal(size=(V, D)) * 0.5
        bias = rng.normal(size=(V,)) if opts.get("bias") else None
        labels = rng.integers(0, V, size=(N,))
        if opts.get("ignore"):
            labels[[1, 5, 6]] = -100
        cot = rng.uniform(0.5, 2.0, size=(N,))
        # Inputs are stored as float32 values (what the tests feed), computed in float64.
        hidden, weight = hidden.astype(np.float32).astype(np.float64), weight.astype(np.float32).astype(np.float64)
        if bias is not None:
            bias = bias.astype(np.float32).astype(np.float64)
        kw = {k: opts[k] for k in ("label_smoothing", "z_loss", "logit_softcap") if k in opts}
        ref = reference(hidden, weight, bias, labels, cot, **kw)
        cases[name] = {
            "kwargs": kw,
            "hidden": hidden.tolist(),
            "weight": weight.tolist(),
            "bias": None if bias is None else bias.tolist(),
            "labels": labels.tolist(),
            "cotangent": cot.tolist(),
            **ref,
        }
    out = {"source": f"torch {torch.__version__}, float64 autograd; naive head + F.cross_entropy", "cases": cases}
    path = pathlib.Path(__file__).with_name("large_vocab.json")
    path.write_text(json.dumps(out))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
