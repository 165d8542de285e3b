"""Clustering quality on simbench profiles: do households, commercial and agricultural prosumers separate?

Every synthetic prosumer goes through the real ``LoadProfiler`` (day by day) and ``ProfileClusterer``. Per simbench
profile type a share of prosumers is held out of the cluster build (stratified) and segmented afterwards as "new"
prosumers, once with all their days and once with their first week only (when ``LoadProfiler.features`` first
becomes available). Each segment is named after the majority category of its built members; a new prosumer is
correctly segmented when its segment's name equals its own category.

Reported: on the built prosumers ARI and purity against the three categories and the category x segment confusion;
on the new prosumers the accuracy (overall, per category, per profile type) and ``category_ari_new``, the ARI of
the categories predicted through the segment names. Plain ARI falls as k grows (each category spans several
segments); purity and the new-prosumer figures are the ones that say whether segments keep categories apart.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import numpy as np

from streams.vpp.clustering import ProfileClusterer
from streams.vpp.profiles import LoadProfiler
from streams.vpp.quality import adjusted_rand_index, majority_labels, purity
from streams.vpp.simbench_data import DAY_MS, SyntheticProsumer, synthetic_prosumers


def profile_features(
    prosumers: list[SyntheticProsumer], max_days: int | None = None
) -> dict[str, np.ndarray]:
    """Feed every prosumer's days (the first ``max_days`` if given) through a LoadProfiler; return the vectors."""
    profiler = LoadProfiler()
    for p in prosumers:
        for d, day in enumerate(p.energy_wh[:max_days]):
            profiler.add_day(p.prosumer_id, p.first_day_ms + d * DAY_MS, day)
    feats = {p.prosumer_id: profiler.features(p.prosumer_id) for p in prosumers}
    return {k: v for k, v in feats.items() if v is not None}


def _held_out(prosumers: list[SyntheticProsumer], holdout: float, seed: int) -> set[str]:
    rng = np.random.default_rng(seed)
    by_type: dict[str, list[str]] = {}
    for p in prosumers:
        by_type.setdefault(p.profile_type, []).append(p.prosumer_id)
    out: set[str] = set()
    for t in sorted(by_type):
        ids = by_type[t]
        n = min(len(ids) - 1, max(1, round(len(ids) * holdout))) if len(ids) > 1 else 0
        out.update(rng.choice(ids, size=n, replace=False).tolist())
    return out


def _accuracy(ok: list[tuple[str, bool]]) -> dict[str, float]:
    total, right = Counter(k for k, _ in ok), Counter(k for k, good in ok if good)
    return {k: round(right[k] / total[k], 4) for k in sorted(total)}


def evaluate_simbench(
    k: int | None = 3,
    per_type: int = 8,
    days: int = 28,
    holdout: float = 0.25,
    seed: int = 0,
    newcomer_days: int = 7,
) -> dict[str, Any]:
    """Build segments on the non-held-out prosumers, segment the held-out ones; return agreement figures."""
    prosumers = synthetic_prosumers(per_type=per_type, days=days, seed=seed)
    by_id = {p.prosumer_id: p for p in prosumers}
    t0 = time.perf_counter()
    feats = profile_features(prosumers)
    t_profile = time.perf_counter() - t0
    new_ids = sorted(_held_out(prosumers, holdout, seed) & set(feats))
    first_week = profile_features([by_id[i] for i in new_ids], max_days=newcomer_days)
    build_ids = [i for i in sorted(feats) if i not in set(new_ids)]
    clusterer = ProfileClusterer(seed=seed)
    t0 = time.perf_counter()
    built = clusterer.build({i: feats[i] for i in build_ids}, k=k)
    t_build = time.perf_counter() - t0
    truth = [by_id[a.prosumer_id].category for a in built]
    pred = [a.cluster_id for a in built]
    labels = majority_labels(truth, pred)
    new = [clusterer.assign(i, feats[i], remember=False) for i in new_ids]
    new_truth = [by_id[a.prosumer_id].category for a in new]
    new_named = [labels[a.cluster_id] for a in new]
    ok = [t == n for t, n in zip(new_truth, new_named, strict=True)]
    week = [clusterer.assign(i, v, remember=False) for i, v in sorted(first_week.items())]
    week_ok = [labels[a.cluster_id] == by_id[a.prosumer_id].category for a in week]
    confusion: dict[str, dict[str, int]] = {}
    segments: dict[str, dict[str, Any]] = {}
    for a, t in zip(built, truth, strict=True):
        row = confusion.setdefault(t, {})
        row[str(a.cluster_id)] = row.get(str(a.cluster_id), 0) + 1
        seg = segments.setdefault(str(a.cluster_id), {"label": labels[a.cluster_id], "types": Counter()})
        seg["types"][by_id[a.prosumer_id].profile_type] += 1
    return {
        "k": len(clusterer.clusters()),
        "seed": seed,
        "prosumers_built": len(built),
        "prosumers_new": len(new),
        "adjusted_rand": round(adjusted_rand_index(truth, pred), 4),
        "purity": round(purity(truth, pred), 4),
        "silhouette": round(clusterer.silhouette or 0.0, 4),
        "new_prosumer_accuracy": round(sum(ok) / len(ok), 4) if ok else None,
        "new_prosumer_accuracy_first_week": round(sum(week_ok) / len(week_ok), 4) if week_ok else None,
        "category_ari_new": round(adjusted_rand_index(new_truth, new_named), 4) if new else None,
        "new_accuracy_by_category": _accuracy(list(zip(new_truth, ok, strict=True))),
        "new_accuracy_by_type": _accuracy(
            [(by_id[a.prosumer_id].profile_type, good) for a, good in zip(new, ok, strict=True)]
        ),
        "cluster_labels": {str(c): lab for c, lab in sorted(labels.items())},
        "confusion": confusion,
        "segments": {
            c: {"label": s["label"], "types": dict(sorted(s["types"].items()))}
            for c, s in sorted(segments.items(), key=lambda kv: int(kv[0]))
        },
        "profile_seconds": round(t_profile, 3),
        "build_seconds": round(t_build, 3),
    }


SUMMARY_KEYS = (
    "adjusted_rand",
    "purity",
    "new_prosumer_accuracy",
    "new_prosumer_accuracy_first_week",
    "category_ari_new",
)


def summarise_simbench(k: int | None, seeds: list[int], per_type: int = 8) -> dict[str, Any]:
    """``evaluate_simbench`` over several seeds (different prosumers, windows and splits): mean and min per figure,
    plus the new-prosumer accuracy per category and per profile type pooled over the seeds."""
    runs = [evaluate_simbench(k=k, per_type=per_type, seed=s) for s in seeds]
    out: dict[str, Any] = {
        "k": runs[0]["k"],
        "seeds": list(seeds),
        "prosumers_new_per_seed": runs[0]["prosumers_new"],
    }
    for key in SUMMARY_KEYS:
        vals = [r[key] for r in runs if r[key] is not None]
        out[key] = {"mean": round(float(np.mean(vals)), 4), "min": round(float(np.min(vals)), 4)}
    for key in ("new_accuracy_by_category", "new_accuracy_by_type"):
        pooled: dict[str, list[float]] = {}
        for r in runs:
            for label, acc in r[key].items():
                pooled.setdefault(label, []).append(acc)
        out[key] = {label: round(float(np.mean(v)), 4) for label, v in sorted(pooled.items())}
    return out
