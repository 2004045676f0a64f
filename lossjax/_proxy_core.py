"""Embeddings against one vector per class: the core shared by the proxy and margin families.

The margin softmaxes (:mod:`lossjax.losses._margins`) and the proxy losses
(:mod:`lossjax.losses._proxies`) take ``embeddings [N, D]``, integer
``labels [N]`` and ``proxies [C, D]`` (a classifier's weights, learned
proxies or class centers). This module checks those three arguments once
(:func:`check_proxy_inputs`), builds the masked cosine matrix and one-hot
targets (:func:`class_cosines`), computes a cross-entropy from logits and a
one-hot (:func:`ce_from_logits`), and declares the conformance sample both
families use (:func:`proxy_sample`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lossjax import _checks as C
from lossjax._pairwise import pairwise_similarity
from lossjax.registry import Sample

__all__ = [
    "ClassCosines",
    "ce_from_logits",
    "check_proxy_inputs",
    "class_cosines",
    "is_concrete",
    "proxy_sample",
]

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def is_concrete(x: Any) -> bool:
    """True for a concrete (not traced) scalar: a hyperparameter whose value can be checked now."""
    return not isinstance(x, jax.core.Tracer) and np.ndim(x) == 0


def check_proxy_inputs(
    fn: str, embeddings: ArrayLike, labels: ArrayLike, proxies: ArrayLike, *, proxies_ndim: int = 2
) -> tuple[Array, Array, Array]:
    """Checks ``embeddings [N, D]`` (float), ``labels [N]`` (int) and ``proxies [C, D]`` (or ``[C, K, D]``).

    Returns the three as arrays; errors name ``fn``, the argument, its shape and the shape needed.
    """
    e = C.check_array(fn, "embeddings", embeddings, ndim=2, dtype="float")
    y = C.check_array(fn, "labels", labels, ndim=1, dtype="int")
    if y.shape[0] != e.shape[0]:
        raise ValueError(
            f"{fn}: `labels` must have shape (N,)=({e.shape[0]},) to match embeddings.shape={e.shape}, got {y.shape}."
        )
    p = C.check_array(fn, "proxies", proxies, ndim=proxies_ndim, dtype="float")
    if p.shape[-1] != e.shape[1]:
        need = "(C, D)" if proxies_ndim == 2 else "(C, K, D)"
        raise ValueError(
            f"{fn}: `proxies` must have shape {need} with D={e.shape[1]} (the embedding size), got {p.shape}."
        )
    return e, y, p


class ClassCosines(NamedTuple):
    """The masked batch against normalized proxies.

    Attributes:
      embeddings: ``[N, D]`` in the compute dtype, padded rows filled with 0 (not normalized).
      cos: ``[N, C]`` cosine similarities.
      onehot: ``[N, C]`` one-hot targets in the compute dtype.
      mask: the ``[N]`` boolean mask, or None.
      dtype: the compute dtype.
    """

    embeddings: Array
    cos: Array
    onehot: Array
    mask: Array | None
    dtype: jnp.dtype


def class_cosines(
    fn: str, embeddings: ArrayLike, labels: ArrayLike, proxies: ArrayLike, where: ArrayLike | None
) -> ClassCosines:
    """Checks the inputs, fills padded rows, and returns the ``[N, C]`` cosines and one-hot targets."""
    e, y, p = check_proxy_inputs(fn, embeddings, labels, proxies)
    dtype = C.compute_dtype(e, p)
    mask = C.prepare_where(fn, where, e.shape[:1])
    e = C.fill_masked(C.as_compute(e, dtype), mask)
    cos = pairwise_similarity(e, C.as_compute(p, dtype), distance="cosine")
    onehot = C.class_targets(fn, cos, y, dtype, where=mask)
    return ClassCosines(e, cos, onehot, mask, dtype)


def ce_from_logits(logits: Array, onehot: Array) -> Array:
    """Per-row cross-entropy ``-sum_c onehot_c log_softmax(logits)_c``."""
    return -jnp.sum(onehot * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def proxy_sample(seed: int = 0, n: int = 6, d: int = 4, c: int = 3, noise: float = 0.4, **kwargs: Any) -> Sample:
    """The conformance sample ``(embeddings, labels, proxies)`` of a loss on embeddings and class proxies.

    Embeddings lie near their class's proxy, so target cosines stay away from
    the ArcFace threshold and from +-1 and the float64 gradient check is meaningful.
    """
    rng = np.random.default_rng(seed)
    proxies = rng.normal(size=(c, d)).astype(np.float32)
    labels = (np.arange(n) % c).astype(np.int32)
    emb = (proxies[labels] * 1.5 + noise * rng.normal(size=(n, d))).astype(np.float32)
    return Sample(args=(emb, labels, proxies), diff_argnums=(0, 2), batched_argnums=(0, 1), **kwargs)
