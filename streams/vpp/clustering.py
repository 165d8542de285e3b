"""Prosumer clustering and segmentation: batch k-means build, River online k-means for updates.

Features are compared standardised and weighted: ``build`` fixes per-feature means and standard deviations over
the built prosumers (frozen until the next build, so centres stay comparable) and multiplies by per-feature
weights (``profiles.feature_weights`` for ``LoadProfiler.features`` vectors: the 192 shape slots share the weight
of 6 descriptors). Without this, 192 raw shape slots dominate the distance and the few values that separate
homes, businesses and farms (weekend ratios, spikiness, base load) are drowned.

``build`` runs k-means++ seeded Lloyd iterations over the current feature vectors (k fixed, or chosen in
[k_min, k_max] by silhouette) and loads the centres into a River ``cluster.KMeans`` working in the standardised
space. Afterwards every changed profile moves its nearest centre online (``learn``), and new prosumers are
segmented to the nearest centre (``assign``) without re-clustering. Cluster ids are ints 0..k-1 of the current
run; centroids are reported in feature units.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from river import cluster

from streams.vpp.profiles import FEATURE_DIM, feature_weights
from streams.vpp.quality import silhouette


@dataclass(frozen=True)
class ClusterInfo:
    """One segment: member count and centroid (same units as the features, dimensionless shapes)."""

    cluster_id: int
    size: int
    centroid: tuple[float, ...]


@dataclass(frozen=True)
class Assignment:
    """Segment of one prosumer; ``distance``: Euclidean distance to the centroid in the standardised, weighted
    feature space (dimensionless, see ``ProfileClusterer.standardise``)."""

    prosumer_id: str
    run_id: str
    cluster_id: int
    distance: float


def kmeans_batch(x: np.ndarray, k: int, seed: int = 0, restarts: int = 4, iters: int = 100) -> np.ndarray:
    """k-means++ seeded Lloyd k-means; best of ``restarts`` by inertia. Returns centres (k x dim)."""
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centres = [x[rng.integers(len(x))]]
        for _ in range(k - 1):
            d2 = np.min(((x[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
            probs = d2 / d2.sum() if d2.sum() > 0 else None
            centres.append(x[rng.choice(len(x), p=probs)])
        c = np.asarray(centres, dtype=float)
        for _ in range(iters):
            labels = _nearest(x, c)
            new = np.array([x[labels == i].mean(axis=0) if (labels == i).any() else c[i] for i in range(k)])
            if np.allclose(new, c):
                break
            c = new
        inertia = float(((x - c[_nearest(x, c)]) ** 2).sum())
        if inertia < best_inertia:
            best, best_inertia = c, inertia
    assert best is not None
    return best


def _nearest(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    return ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(axis=1)


def _as_dict(v: np.ndarray) -> dict[int, float]:
    return {i: float(x) for i, x in enumerate(v)}


class ProfileClusterer:
    """Segments prosumers by their profile feature vectors (see ``LoadProfiler.features``).

    ``weights``: per-feature weights applied after standardisation (positive); None = ``feature_weights()`` for
    ``FEATURE_DIM``-long vectors, equal weights otherwise. ``halflife``: River k-means step towards each learnt
    vector (0..1). ``restarts``: k-means++ restarts of the batch build (best inertia wins).
    """

    def __init__(
        self,
        halflife: float = 0.05,
        seed: int = 0,
        weights: np.ndarray | None = None,
        restarts: int = 8,
    ) -> None:
        if weights is not None and (np.asarray(weights) <= 0).any():
            raise ValueError("feature weights must be positive")
        self.halflife = halflife
        self.seed = seed
        self.restarts = restarts
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self.model: cluster.KMeans | None = None
        self.run_id = ""
        self.silhouette: float | None = None
        self._membership: dict[str, int] = {}
        self._dim = 0
        self._mean = np.zeros(0)
        self._scale = np.ones(0)  # standard deviation / weight, per feature

    def _fit_scaling(self, x: np.ndarray) -> None:
        dim = x.shape[1]
        if self.weights is not None:
            if len(self.weights) != dim:
                raise ValueError(f"{len(self.weights)} weights for {dim} features")
            w = self.weights
        else:
            w = feature_weights() if dim == FEATURE_DIM else np.ones(dim)
        sd = x.std(axis=0)
        sd = np.where(sd > 1e-12, sd, 1.0)  # constant features stay as they are
        self._dim, self._mean, self._scale = dim, x.mean(axis=0), sd / w

    def standardise(self, v: np.ndarray) -> np.ndarray:
        """Feature vector -> standardised, weighted vector the k-means works on (dimensionless)."""
        return (np.asarray(v, dtype=float) - self._mean) / self._scale

    def build(
        self, features: Mapping[str, np.ndarray], k: int | None = None, k_min: int = 2, k_max: int = 8
    ) -> list[Assignment]:
        """(Re)cluster all given prosumers; ``k=None`` picks k by silhouette. Returns every assignment."""
        ids = sorted(features)
        raw = np.asarray([features[i] for i in ids], dtype=float)
        self._fit_scaling(raw)
        x = self.standardise(raw)
        candidates = [k] if k else list(range(k_min, min(k_max, len(ids) - 1) + 1))
        best: tuple[float, np.ndarray] | None = None
        for kk in candidates:
            c = kmeans_batch(x, kk, seed=self.seed, restarts=self.restarts)
            score = silhouette(x, _nearest(x, c)) if len(candidates) > 1 or len(ids) > kk else 0.0
            if best is None or score > best[0]:
                best = (score, c)
        assert best is not None
        self.silhouette, centres = best
        self.model = cluster.KMeans(n_clusters=len(centres), halflife=self.halflife, seed=self.seed)
        for i, centre in enumerate(centres):
            self.model.centers[i].clear()
            self.model.centers[i].update(_as_dict(centre))
        self.run_id = self._run_id(ids, centres)
        self._membership = {}
        return [self.assign(pid, features[pid], remember=True) for pid in ids]

    @staticmethod
    def _run_id(ids: list[str], centres: np.ndarray) -> str:
        h = hashlib.sha256(",".join(ids).encode())
        h.update(np.round(centres, 6).tobytes())
        return h.hexdigest()[:16]

    def _require(self) -> cluster.KMeans:
        if self.model is None:
            raise RuntimeError("no cluster run yet: call build() first")
        return self.model

    def _centre_z(self, cluster_id: int) -> np.ndarray:
        centre = self._require().centers[cluster_id]
        return np.array([centre.get(i, 0.0) for i in range(self._dim)])

    def _distance(self, cid: int, z: np.ndarray) -> float:
        return float(np.linalg.norm(self._centre_z(cid) - z))

    def _z(self, vector: np.ndarray) -> np.ndarray:
        self._require()
        if len(vector) != self._dim:
            raise ValueError(f"feature vector has {len(vector)} values, the clusters {self._dim}")
        return self.standardise(vector)

    def assign(self, prosumer_id: str, vector: np.ndarray, remember: bool = True) -> Assignment:
        """Segment a (new) prosumer to the nearest centroid without moving it."""
        z = self._z(vector)
        cid = int(self._require().predict_one(_as_dict(z)))
        if remember:
            self._membership[prosumer_id] = cid
        return Assignment(prosumer_id, self.run_id, cid, self._distance(cid, z))

    def learn(self, prosumer_id: str, vector: np.ndarray) -> Assignment:
        """Online update: move the nearest centre towards this prosumer's latest profile and assign it."""
        z = self._z(vector)
        cid = int(self._require().learn_predict_one(_as_dict(z)))
        self._membership[prosumer_id] = cid
        return Assignment(prosumer_id, self.run_id, cid, self._distance(cid, z))

    def centroid(self, cluster_id: int) -> np.ndarray:
        """Centre of a segment in feature units (for profile features: shapes and descriptors, dimensionless)."""
        return self._centre_z(cluster_id) * self._scale + self._mean

    def membership(self) -> dict[str, int]:
        return dict(self._membership)

    def clusters(self) -> list[ClusterInfo]:
        """Current segments with sizes (prosumers whose latest assignment is that segment) and centroids."""
        model = self._require()
        sizes = Counter(self._membership.values())
        return [
            ClusterInfo(cid, sizes.get(cid, 0), tuple(float(v) for v in self.centroid(cid)))
            for cid in sorted(model.centers)
        ]
