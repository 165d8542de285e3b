"""Clustering quality measures (numpy only): adjusted Rand index, purity, silhouette."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _contingency(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> np.ndarray:
    _, ti = np.unique(np.asarray(labels_true), return_inverse=True)
    _, pi = np.unique(np.asarray(labels_pred), return_inverse=True)
    m = np.zeros((ti.max() + 1, pi.max() + 1), dtype=np.int64)
    np.add.at(m, (ti, pi), 1)
    return m


def _pairs(x: np.ndarray) -> float:
    return float((x * (x - 1) // 2).sum())


def adjusted_rand_index(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> float:
    """Hubert-Arabie adjusted Rand index: 1 = identical partitions, ~0 = chance agreement."""
    if len(labels_true) != len(labels_pred):
        raise ValueError("label sequences differ in length")
    m = _contingency(labels_true, labels_pred)
    n = int(m.sum())
    total = n * (n - 1) / 2
    index = _pairs(m)
    a, b = _pairs(m.sum(axis=1)), _pairs(m.sum(axis=0))
    expected = a * b / total if total else 0.0
    max_index = (a + b) / 2
    if max_index == expected:
        return 1.0
    return (index - expected) / (max_index - expected)


def purity(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> float:
    """Share of items whose cluster's majority true label equals their own label (1 = pure clusters)."""
    m = _contingency(labels_true, labels_pred)
    return float(m.max(axis=0).sum() / m.sum())


def majority_labels(labels_true: Sequence[Any], labels_pred: Sequence[Any]) -> dict[Any, Any]:
    """Map each predicted cluster to its most frequent true label."""
    out: dict[Any, dict[Any, int]] = {}
    for t, p in zip(labels_true, labels_pred, strict=True):
        out.setdefault(p, {}).setdefault(t, 0)
        out[p][t] += 1
    return {p: max(c, key=c.__getitem__) for p, c in out.items()}


def silhouette(x: np.ndarray, labels: Sequence[Any]) -> float:
    """Mean silhouette coefficient (Euclidean), in [-1, 1]; singletons score 0. O(n^2) memory."""
    lab = np.asarray(labels)
    uniq = np.unique(lab)
    if len(uniq) < 2:
        return 0.0
    sq = (x * x).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0))
    scores = np.zeros(len(x))
    masks = {u: lab == u for u in uniq}
    for u, mask in masks.items():
        size = mask.sum()
        if size < 2:
            continue
        a = d[np.ix_(mask, mask)].sum(axis=1) / (size - 1)
        b = np.min([d[np.ix_(mask, masks[v])].mean(axis=1) for v in uniq if v != u], axis=0)
        scores[mask] = (b - a) / np.maximum(a, b)
    return float(scores.mean())
