"""Clustering quality on simbench profiles: do households, commercial and agricultural prosumers separate?

Every synthetic prosumer goes through the real ``LoadProfiler`` (day by day) and ``ProfileClusterer``. A share
of prosumers is held out of the cluster build and segmented afterwards as "new" prosumers; a new prosumer counts
as correctly segmented when its segment's majority category (from the built members) equals its own.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from streams.vpp.clustering import ProfileClusterer
from streams.vpp.profiles import LoadProfiler
from streams.vpp.quality import adjusted_rand_index, majority_labels, purity
from streams.vpp.simbench_data import DAY_MS, SyntheticProsumer, synthetic_prosumers


def profile_features(prosumers: list[SyntheticProsumer]) -> dict[str, np.ndarray]:
    """Feed every prosumer's days through a LoadProfiler; return the feature vectors."""
    profiler = LoadProfiler()
    for p in prosumers:
        for d, day in enumerate(p.energy_wh):
            profiler.add_day(p.prosumer_id, p.first_day_ms + d * DAY_MS, day)
    feats = {p.prosumer_id: profiler.features(p.prosumer_id) for p in prosumers}
    return {k: v for k, v in feats.items() if v is not None}


def evaluate_simbench(
    k: int | None = 3, per_type: int = 8, days: int = 28, holdout: float = 0.2, seed: int = 0
) -> dict[str, Any]:
    """Build segments on (1 - holdout) of the prosumers, segment the rest; return agreement figures."""
    prosumers = synthetic_prosumers(per_type=per_type, days=days, seed=seed)
    category = {p.prosumer_id: p.category for p in prosumers}
    t0 = time.perf_counter()
    feats = profile_features(prosumers)
    t_profile = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    ids = sorted(feats)
    new_ids = set(rng.choice(ids, size=int(len(ids) * holdout), replace=False).tolist())
    build_ids = [i for i in ids if i not in new_ids]
    clusterer = ProfileClusterer(seed=seed)
    t0 = time.perf_counter()
    built = clusterer.build({i: feats[i] for i in build_ids}, k=k)
    t_build = time.perf_counter() - t0
    truth = [category[a.prosumer_id] for a in built]
    pred = [a.cluster_id for a in built]
    labels = majority_labels(truth, pred)
    new = [clusterer.assign(i, feats[i]) for i in sorted(new_ids)]
    correct = sum(labels.get(a.cluster_id) == category[a.prosumer_id] for a in new)
    confusion: dict[str, dict[str, int]] = {}
    for t, p in zip(truth, pred, strict=True):
        row = confusion.setdefault(t, {})
        row[str(p)] = row.get(str(p), 0) + 1
    return {
        "k": len(clusterer.clusters()),
        "prosumers_built": len(built),
        "prosumers_new": len(new),
        "adjusted_rand": round(adjusted_rand_index(truth, pred), 4),
        "purity": round(purity(truth, pred), 4),
        "silhouette": round(clusterer.silhouette or 0.0, 4),
        "new_prosumer_accuracy": round(correct / len(new), 4) if new else None,
        "cluster_labels": {str(c): lab for c, lab in sorted(labels.items())},
        "confusion": confusion,
        "profile_seconds": round(t_profile, 3),
        "build_seconds": round(t_build, 3),
    }
