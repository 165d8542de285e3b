"""Integer pro-rata allocation with a deterministic remainder (largest-remainder / Hamilton method)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pro_rata(total: int, weights: Sequence[int]) -> list[int]:
    """Split the integer ``total`` over ``weights`` (same unit, e.g. Wh) proportionally, in whole units.

    Every share is ``floor(total * w / sum(weights))``; the units left over go one each to the entries with the
    largest fractional remainder, ties going to the earlier entry (callers pass entries in priority order, e.g.
    time priority). The shares sum exactly to ``total`` and no share exceeds its weight when
    ``0 <= total <= sum(weights)``.
    """
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("pro_rata needs a non-negative total and weights")
    denom = sum(weights)
    if total > denom:
        raise ValueError(f"cannot allocate {total} over weights summing to {denom}")
    if total == denom:
        return list(weights)
    if total == 0:
        return [0] * len(weights)
    shares = []
    remainders = []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, denom)
        shares.append(q)
        remainders.append((-r, i))
    leftover = total - sum(shares)
    for _, i in sorted(remainders)[:leftover]:
        shares[i] += 1
    return shares


def in_priority(total: int, weights: Sequence[int]) -> list[int]:
    """Fill ``weights`` one after the other until ``total`` is used up (time-priority rationing)."""
    shares = []
    left = total
    for w in weights:
        take = min(w, left)
        shares.append(take)
        left -= take
    if left:
        raise ValueError(f"cannot allocate {total} over weights summing to {sum(weights)}")
    return shares


def pro_rata_array(total: int, weights: np.ndarray) -> np.ndarray:
    """:func:`pro_rata` for an int64 numpy array (same rule, same result); falls back to Python on overflow risk."""
    if len(weights) == 0 or total * int(weights.max()) >= 2**62:
        return np.asarray(pro_rata(total, [int(w) for w in weights]), dtype=np.int64)
    denom = int(weights.sum())
    if total < 0 or total > denom or (weights < 0).any():
        raise ValueError(f"cannot allocate {total} over weights summing to {denom}")
    if total == denom:
        return weights.copy()
    scaled = weights * total
    shares = scaled // denom
    remainders = scaled % denom
    leftover = total - int(shares.sum())
    if leftover:
        # largest remainder first, ties to the earlier entry (lexsort: last key is primary)
        winners = np.lexsort((np.arange(len(weights)), -remainders))[:leftover]
        shares[winners] += 1
    return shares
