"""VPP capability for reserve and frequency services: unit commitment + economic dispatch MILP (HiGHS).

Per request (one service, a window of slots) the optimiser:
1. prequalifies every asset for the service (direction, response time incl. start-up, energy) -> ``excluded``;
2. solves, over all slots t, a MILP with for every available generator g a commitment ``u[g,t]`` (binary),
   set point ``p[g,t]`` (kW) and reserve ``r[g,t]`` (kW, 0 if not prequalified), and for every other prequalified
   asset a reserve ``r[a,t]`` within its headroom:
   - ``p_min u <= p <= p_max u``; generators that are off now stay off until their start-up time has elapsed
     (counting the lead time between ``now`` and the window start);
   - between slots ``|p[t] - p[t-1]| <= max(ramp x slot seconds, p_min)``, ``p[-1]`` = current set point;
   - UP: ``r <= p_max u - p`` (+ ``p_max (1 - u)`` for an off generator fast enough to start within the
     response time); DOWN: ``r <= p - p_min u``; and ``r <= R = ramp x max_response_s`` (ramp-limited delivery);
   - the generators cover the demand schedule: ``sum_g p[g,t] = demand_kw[t]`` (default: their current output);
   - maximise ``value x sum r x slot hours - sum marginal cost x p x slot hours`` where ``value`` is the offered
     price per kW and hour, or a value that dominates any generation cost (capacity first, then cheapest dispatch).
   Reserves of non-generator assets are independent of each other and of the dispatch, so their optimum is
   their headroom and they are added in closed form (keeps the MILP small). Headroom (kW): BESS ``min(p_max -/+ current, usable kWh / duration h)``; loads/EVSE UP
   ``consumption x curtailable share``, DOWN ``p_max - consumption``; PV/wind DOWN = output, UP = 0.
3. reports deliverable capacity per slot with an uncertainty band (reserve of forecast-based assets times their
   ``uncertainty_min``/``uncertainty_max``), the set points and the coalition (assets with reserve > 0).
``feasible`` = every slot's capacity >= the service's minimum size and the dispatch problem is feasible.

Formulation details that keep large portfolios (thousands of generators) solvable at the root node; none of them
changes the optimum:
- the ramp-limited reserve cap is written in perspective form ``r <= R u`` (not only ``r <= R``) wherever the
  reserve needs the unit committed (UP without fast start, DOWN). Without it the LP relaxation lets a unit at
  ``u = R / p_max`` and ``p = 0`` offer its full ``R``; the root bound was 78 % off and HiGHS stalled in cut
  separation at 10,000 assets;
- a generator with ``p_min = 0`` has its commitment fixed to 1 (where start-up allows): every constraint is
  then at least as loose as with ``u = 0``, so the binary is redundant;
- the objective is scaled by ``1 / (slot hours x max(value, costs))`` (HiGHS warned about 7e7 cost
  coefficients); the optimum is unchanged.

Two backends build the same model: ``highspy`` (default) assembles the sparse column-wise matrix from numpy
arrays and passes it to HiGHS; ``pyomo`` writes it algebraically in Pyomo and solves it with appsi HiGHS (the
reference; tests check both reach the same optimum). ``build_seconds`` covers the preparation and the model
hand-over to HiGHS, ``solve_seconds`` the HiGHS run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

from streams import highs
from streams.highs import new_highs
from streams.vpp.assets import (
    DISPATCHABLE,
    LOADS,
    RES,
    Asset,
    AssetKind,
    Direction,
    ExclusionReason,
    ServiceSpec,
    prequalify,
    usable_energy_kwh,
)

Backend = Literal["highspy", "pyomo"]
EPS = 1e-6


@dataclass(frozen=True)
class CapabilityRequest:
    """``window_start_ms``/``window_end_ms``: UTC epoch ms; ``now_ms``: evaluation time (default = window start).
    ``demand_kw``: per-slot output the generators must deliver (kW); ``price_micro_per_kw_h``: reserve price."""

    request_id: str
    service: ServiceSpec
    window_start_ms: int
    window_end_ms: int
    slot_minutes: int = 15
    now_ms: int | None = None
    demand_kw: tuple[float, ...] | None = None
    price_micro_per_kw_h: int | None = None
    time_limit_s: float = 10.0
    mip_gap: float = 1e-4

    @property
    def slots(self) -> int:
        return max(1, (self.window_end_ms - self.window_start_ms) // (self.slot_minutes * 60_000))

    def slot_start(self, t: int) -> int:
        return self.window_start_ms + t * self.slot_minutes * 60_000


@dataclass(frozen=True)
class SlotCapability:
    """Deliverable capacity in one slot, kW: optimised value and its uncertainty band."""

    start_ms: int
    end_ms: int
    capacity_kw: float
    capacity_low_kw: float
    capacity_high_kw: float


@dataclass(frozen=True)
class AssetAssignment:
    """Reserve per slot (kW), generator set points per slot (kW, None for other kinds), delivery time (s)."""

    asset_id: str
    kind: AssetKind
    reserve_kw: tuple[float, ...]
    setpoint_kw: tuple[float, ...] | None
    response_s: float


@dataclass(frozen=True)
class CapabilityResult:
    request_id: str
    service: str
    feasible: bool
    shortfall_reason: str | None
    slots: tuple[SlotCapability, ...]
    assignments: tuple[AssetAssignment, ...]
    excluded: tuple[tuple[str, ExclusionReason], ...]
    generation_cost_micro: int
    build_seconds: float
    solve_seconds: float
    solver_status: str = "optimal"
    mip_gap: float | None = 0.0
    backend: str = "highspy"

    @property
    def capacity_kw(self) -> float:
        """Firm capacity over the window: the smallest slot capacity, kW."""
        return min(s.capacity_kw for s in self.slots)

    def coalition(self) -> list[str]:
        return [a.asset_id for a in self.assignments if max(a.reserve_kw) > EPS]


def headroom_kw(asset: Asset, service: ServiceSpec, slot: int) -> float:
    """Upper bound of a non-generator asset's reserve in a slot (kW), see module doc."""
    up = service.direction == Direction.UP
    duration_h = service.min_duration_min / 60.0
    value = asset.value_at(slot)
    if asset.kind == AssetKind.BESS:
        power = asset.p_max_kw - value if up else asset.p_max_kw + value
        energy = usable_energy_kwh(asset, service.direction)
        hr = min(power, energy / duration_h) if duration_h > 0 else power
    elif asset.kind in LOADS:
        hr = value * asset.curtailable_share if up else asset.p_max_kw - value
    elif asset.kind in RES:
        hr = 0.0 if up else value
    else:  # pragma: no cover - generators are modelled in the MILP
        raise ValueError(asset.kind)
    if asset.ramp_kw_per_s is not None:
        hr = min(hr, asset.ramp_kw_per_s * service.max_response_s)
    return max(0.0, hr)


@dataclass(frozen=True)
class GeneratorModel:
    """The generator part of one request as arrays over G generators x T slots (input of both backends).

    ``p_min``/``p_max``/``p0``/``step``/``r_cap``: kW; ``p0`` = output before the window (0 when off), ``step`` =
    largest change between consecutive slots and ``r_cap`` = ramp-limited reserve (``inf`` = no ramp limit);
    ``cost``: micro-units per kWh; ``qualified``/``fast``: (G,) bool, may offer reserve / an off unit can start
    and deliver within the response time; ``u_lo``/``u_hi``: (G, T) commitment bounds (``u_hi = 0`` before the
    start-up time has elapsed, ``u_lo = 1`` where the binary is redundant); ``demand``: (T,) kW;
    ``value``: reserve value, micro-units per kW and hour; ``slot_h``: slot length, hours; ``count``: (G,)
    identical units each row stands for (None = 1 each; see ``aggregate_identical``).
    """

    ids: tuple[str, ...]
    p_min: np.ndarray
    p_max: np.ndarray
    cost: np.ndarray
    p0: np.ndarray
    step: np.ndarray
    r_cap: np.ndarray
    qualified: np.ndarray
    fast: np.ndarray
    u_lo: np.ndarray
    u_hi: np.ndarray
    demand: np.ndarray
    up: bool
    value: float
    slot_h: float
    count: np.ndarray | None = None

    @property
    def multiplicity(self) -> np.ndarray:
        """(G,) number of identical units per row."""
        return np.ones(len(self.ids)) if self.count is None else self.count

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.ids), len(self.demand)

    @property
    def reserve_weight(self) -> float:
        """Objective coefficient of 1 kW of reserve in one slot (scaled, dimensionless)."""
        return self.value * self.slot_h * self.objective_scale

    @property
    def cost_weight(self) -> np.ndarray:
        """(G,) objective coefficient of 1 kW of output in one slot (scaled, dimensionless)."""
        return self.cost * self.slot_h * self.objective_scale

    @property
    def objective_scale(self) -> float:
        """1 / (slot hours x the largest money coefficient): keeps objective coefficients <= 1."""
        top = max([self.value, 1.0, *self.cost.tolist()])
        return 1.0 / (self.slot_h * top)

    def perspective(self) -> np.ndarray:
        """(G,) bool: the unit must be committed to deliver reserve, so ``r <= r_cap u`` applies."""
        return self.qualified & np.isfinite(self.r_cap) & ~(self.up & self.fast)


@dataclass(frozen=True)
class Dispatch:
    """Solver outcome: (G, T) set points and reserves, kW; HiGHS status name and relative MIP gap."""

    setpoint_kw: np.ndarray
    reserve_kw: np.ndarray
    status: str
    mip_gap: float | None


def generator_model(
    gens: list[Asset], qualified: set[str], req: CapabilityRequest, demand: tuple[float, ...]
) -> GeneratorModel:
    """Arrays of the generator dispatch problem for ``req`` (see module doc)."""
    service = req.service
    n_t = req.slots
    slot_s = req.slot_minutes * 60.0
    lead_s = max(0.0, (req.window_start_ms - (req.now_ms or req.window_start_ms)) / 1000.0)
    inf = float("inf")
    p_min = np.array([g.p_min_kw for g in gens], dtype=float)
    p_max = np.array([g.p_max_kw for g in gens], dtype=float)
    ramp = np.array([inf if g.ramp_kw_per_s is None else g.ramp_kw_per_s for g in gens], dtype=float)
    is_on = np.array([g.is_on for g in gens], dtype=bool)
    start_up = np.array([g.start_up_time_s for g in gens], dtype=float)
    response = np.array([g.response_time_s for g in gens], dtype=float)
    cost = np.array([g.marginal_cost_micro_per_kwh for g in gens], dtype=float)
    slot_offset = lead_s + np.arange(n_t) * slot_s
    off = (~is_on)[:, None] & (slot_offset[None, :] < start_up[:, None])
    u_hi = np.where(off, 0.0, 1.0)
    u_lo = np.where((p_min <= 0.0)[:, None] & ~off, 1.0, 0.0)
    max_cost = float(cost.max()) if len(gens) else 1.0
    value = (
        float(req.price_micro_per_kw_h)
        if req.price_micro_per_kw_h is not None
        else 1000.0 * max(max_cost, 1.0)
    )
    return GeneratorModel(
        ids=tuple(g.asset_id for g in gens),
        p_min=p_min,
        p_max=p_max,
        cost=cost,
        p0=np.array([g.current_kw if g.is_on else 0.0 for g in gens], dtype=float),
        step=np.maximum(ramp * slot_s, p_min),
        r_cap=ramp * service.max_response_s,
        qualified=np.array([g.asset_id in qualified for g in gens], dtype=bool),
        fast=start_up + response <= service.max_response_s,
        u_lo=u_lo,
        u_hi=u_hi,
        demand=np.asarray(demand, dtype=float),
        up=service.direction == Direction.UP,
        value=value,
        slot_h=slot_s / 3600.0,
    )


def evaluate_capability(
    assets: list[Asset], req: CapabilityRequest, backend: Backend = "highspy"
) -> CapabilityResult:
    """Solve the capability problem for one request (see module doc); ``backend`` as in the module doc."""
    t_build = time.perf_counter()
    service = req.service
    excluded: list[tuple[str, ExclusionReason]] = []
    qualified: dict[str, Asset] = {}
    for a in assets:
        reason = prequalify(a, service)
        if reason is None:
            qualified[a.asset_id] = a
        else:
            excluded.append((a.asset_id, reason))
    gens = [a for a in assets if a.kind in DISPATCHABLE and a.available]
    others = [a for a in qualified.values() if a.kind not in DISPATCHABLE]
    headroom = {(a.asset_id, t): headroom_kw(a, service, t) for a in others for t in range(req.slots)}
    demand = req.demand_kw or tuple(sum(g.current_kw for g in gens if g.is_on) for _ in range(req.slots))
    model = generator_model(gens, set(qualified), req, demand)
    if backend == "highspy":
        dispatch, build_s, solve_s = _solve_highspy(model, req, t_build)
    elif backend == "pyomo":
        dispatch, build_s, solve_s = _solve_pyomo(model, req, t_build)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    if (
        dispatch.status not in ("optimal", "maxTimeLimit")
        or dispatch.setpoint_kw.size < len(gens) * req.slots
    ):
        return _infeasible(req, excluded, build_s, solve_s, dispatch.status, backend)
    return _result(req, gens, others, headroom, qualified, excluded, dispatch, build_s, solve_s, backend)


def _no_generators(model: GeneratorModel) -> Dispatch:
    """Without generators the dispatch is feasible iff nothing must be generated."""
    n_g, n_t = model.shape
    empty = np.zeros((n_g, n_t))
    ok = bool(np.all(np.abs(model.demand) <= EPS))
    return Dispatch(empty, empty, "optimal" if ok else "infeasible", 0.0 if ok else None)


class _Rows:
    """Row-wise triplets of a sparse constraint matrix with row bounds, assembled block by block."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.count = 0

    def add(self, terms: list[tuple[np.ndarray, np.ndarray | float]], lower, upper) -> None:
        """One row per element: ``lower <= sum_i vals_i x[cols_i] <= upper``; every term is (cols, vals)."""
        m = len(terms[0][0])
        if m == 0:
            return
        ids = self.count + np.arange(m)
        for cols, vals in terms:
            self.rows.append(ids)
            self.cols.append(np.asarray(cols))
            self.vals.append(np.broadcast_to(np.asarray(vals, dtype=float), (m,)))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (m,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (m,)))
        self.count += m

    def add_sums(self, row_of: np.ndarray, cols: np.ndarray, n_rows: int, lower, upper) -> None:
        """``n_rows`` rows; entry i (coefficient 1) of ``cols`` belongs to row ``row_of[i]``."""
        self.rows.append(self.count + row_of)
        self.cols.append(cols)
        self.vals.append(np.ones(len(cols)))
        self.lower.append(np.broadcast_to(np.asarray(lower, dtype=float), (n_rows,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=float), (n_rows,)))
        self.count += n_rows

    def colwise(self, n_col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, index, value) of the column-wise matrix."""
        rows = np.concatenate(self.rows)
        cols = np.concatenate(self.cols)
        vals = np.concatenate(self.vals)
        order = np.lexsort((rows, cols))
        start = np.searchsorted(cols[order], np.arange(n_col + 1))
        return start.astype(np.int32), rows[order].astype(np.int32), vals[order]


def identical_groups(model: GeneratorModel) -> list[np.ndarray]:
    """Indices of generators that are interchangeable, one array per group (singletons included).

    Units are grouped when every model parameter and the state are equal and their ramp limit cannot bind
    (``step >= max(p_max, p0)``: any output in [0, p_max] is reachable from any other within a slot). Then the
    slots decouple per unit, and a group of k units is exactly one unit with an integer commitment
    ``n in [0, k]`` (see ``aggregate_identical``). Units whose ramp can bind stay single: their histories may
    differ between slots, which an aggregate cannot represent exactly."""
    vacuous = model.step >= np.maximum(model.p_max, model.p0)
    keys: dict[tuple, list[int]] = {}
    for g in range(len(model.ids)):
        if vacuous[g]:
            key: tuple = (
                model.p_min[g],
                model.p_max[g],
                model.cost[g],
                model.p0[g],
                model.r_cap[g],
                bool(model.qualified[g]),
                bool(model.fast[g]),
                model.u_lo[g].tobytes(),
                model.u_hi[g].tobytes(),
            )
        else:
            key = ("single", g)
        keys.setdefault(key, []).append(g)
    return [np.asarray(v) for v in keys.values()]


def aggregate_identical(model: GeneratorModel, groups: list[np.ndarray]) -> GeneratorModel:
    """One row per group, ``count`` = group size; ramp rows are dropped for groups (they cannot bind).

    With k identical units and n committed, the best split of output P among the committed units is equal
    (every per-unit reserve bound is concave in the unit's output), so the group offers exactly
    ``min(n R, n p_max - P)`` (UP; plus ``(k - n) min(R, p_max)`` from off units that start fast enough) or
    ``min(n R, P - n p_min)`` (DOWN): the aggregate constraints in ``_solve_highspy`` with ``u = n``."""
    first = np.array([grp[0] for grp in groups])
    count = np.array([len(grp) for grp in groups], dtype=float)
    step = np.where(count > 1, np.inf, model.step[first])
    return GeneratorModel(
        ids=tuple(model.ids[i] for i in first),
        p_min=model.p_min[first],
        p_max=model.p_max[first],
        cost=model.cost[first],
        p0=model.p0[first],
        step=step,
        r_cap=model.r_cap[first],
        qualified=model.qualified[first],
        fast=model.fast[first],
        u_lo=model.u_lo[first],
        u_hi=model.u_hi[first],
        demand=model.demand,
        up=model.up,
        value=model.value,
        slot_h=model.slot_h,
        count=count,
    )


def split_groups(
    model: GeneratorModel, groups: list[np.ndarray], p: np.ndarray, r: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit (G, T) set points and reserves from a group solution: in each slot the first ``n`` members
    are committed at ``P / n`` each; the group reserve is shared in proportion to each member's bound."""
    n_t = len(model.demand)
    setpoint = np.zeros((len(model.ids), n_t))
    reserve = np.zeros((len(model.ids), n_t))
    for j, members in enumerate(groups):
        k = len(members)
        if k == 1:
            setpoint[members[0]] = p[j]
            reserve[members[0]] = r[j]
            continue
        g = members[0]
        r_cap = model.r_cap[g]
        for t in range(n_t):
            on = int(round(min(max(n[j, t], 0.0), k)))
            each = p[j, t] / on if on else 0.0
            if model.up:
                cap_on = min(r_cap, model.p_max[g] - each)
                cap_off = min(r_cap, model.p_max[g]) if model.fast[g] else 0.0
            else:
                cap_on, cap_off = min(r_cap, each - model.p_min[g]), 0.0
            cap_on, cap_off = (max(0.0, cap_on), max(0.0, cap_off)) if model.qualified[g] else (0.0, 0.0)
            total = on * cap_on + (k - on) * cap_off
            share = min(1.0, r[j, t] / total) if total > 0 else 0.0
            setpoint[members[:on], t] = each
            reserve[members[:on], t] = share * cap_on
            reserve[members[on:], t] = share * cap_off
    return setpoint, reserve


def _solve_highspy(units: GeneratorModel, req: CapabilityRequest, t0: float) -> tuple[Dispatch, float, float]:
    """Identical units aggregated (``aggregate_identical``), then columns ``p`` (G x T), ``r``, ``u`` (index
    g T + t in each block; ``u`` counts committed units of a group) and rows as in the module doc."""
    if not units.ids:
        return _no_generators(units), time.perf_counter() - t0, 0.0
    groups = identical_groups(units)
    model = aggregate_identical(units, groups)
    n_g, n_t = model.shape
    mult = model.multiplicity
    n = n_g * n_t
    inf = highspy.kHighsInf
    k = np.arange(n).reshape(n_g, n_t)
    p_col, r_col, u_col = k, n + k, 2 * n + k

    def g_(values: np.ndarray) -> np.ndarray:  # per-generator values broadcast to (G, T)
        return np.broadcast_to(values[:, None], (n_g, n_t))

    rows = _Rows()
    rows.add([(p_col.ravel(), 1.0), (u_col.ravel(), -g_(model.p_max).ravel())], -inf, 0.0)  # p <= p_max u
    sel = g_(model.p_min > 0)
    rows.add([(p_col[sel], 1.0), (u_col[sel], -g_(model.p_min)[sel])], 0.0, inf)  # p >= p_min u
    qual = g_(model.qualified)
    if model.up:
        sel = qual & ~g_(model.fast)  # r + p - p_max u <= 0
        rows.add([(r_col[sel], 1.0), (p_col[sel], 1.0), (u_col[sel], -g_(model.p_max)[sel])], -inf, 0.0)
        # fast start: r + p - (p_max - R') u <= k R' with R' = min(R, p_max), i.e. r + p <= p_max when
        # committed and r <= R' when off (per unit; exact for a group of k)
        sel = qual & g_(model.fast)
        r_off = g_(np.minimum(model.r_cap, model.p_max))
        rows.add(
            [(r_col[sel], 1.0), (p_col[sel], 1.0), (u_col[sel], (r_off - g_(model.p_max))[sel])],
            -inf,
            (r_off * g_(mult))[sel],
        )
    else:  # r - p + p_min u <= 0
        rows.add([(r_col[qual], 1.0), (p_col[qual], -1.0), (u_col[qual], g_(model.p_min)[qual])], -inf, 0.0)
    sel = g_(model.perspective())  # r - r_cap u <= 0
    rows.add([(r_col[sel], 1.0), (u_col[sel], -g_(model.r_cap)[sel])], -inf, 0.0)
    sel = g_(np.isfinite(model.step)) & (np.arange(n_t) > 0)[None, :]  # |p[t] - p[t-1]| <= step
    step = g_(model.step)[sel]
    rows.add([(p_col[sel], 1.0), ((p_col - 1)[sel], -1.0)], -step, step)
    rows.add_sums(np.tile(np.arange(n_t), n_g), p_col.ravel(), n_t, model.demand, model.demand)  # balance

    p_lo = np.zeros((n_g, n_t))
    p_hi = np.where(model.u_hi > 0, g_(model.p_max * mult), 0.0)
    p_lo[:, 0] = np.maximum(0.0, model.p0 - model.step)  # ramp from the current set point
    p_hi[:, 0] = np.minimum(p_hi[:, 0], model.p0 + model.step)
    r_hi = np.where(qual & (model.u_hi > 0) | qual & g_(model.up & model.fast), g_(model.r_cap * mult), 0.0)
    col_lower = np.concatenate([p_lo.ravel(), np.zeros(n), (model.u_lo * mult[:, None]).ravel()])
    col_upper = np.concatenate([p_hi.ravel(), r_hi.ravel(), (model.u_hi * mult[:, None]).ravel()])
    col_upper = np.where(np.isfinite(col_upper), col_upper, inf)
    free_u = (model.u_lo < model.u_hi).ravel()

    lp = highspy.HighsLp()
    lp.num_col_ = 3 * n
    lp.num_row_ = rows.count
    lp.sense_ = highspy.ObjSense.kMaximize
    lp.col_cost_ = np.concatenate(
        [-g_(model.cost_weight).ravel(), np.full(n, model.reserve_weight), np.zeros(n)]
    )
    lp.col_lower_ = col_lower
    lp.col_upper_ = col_upper
    row_lower = np.concatenate(rows.lower)
    row_upper = np.concatenate(rows.upper)
    lp.row_lower_ = np.where(np.isfinite(row_lower), row_lower, -inf)
    lp.row_upper_ = np.where(np.isfinite(row_upper), row_upper, inf)
    a_start, index, value = rows.colwise(3 * n)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = a_start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    milp = bool(free_u.any())
    if milp:
        integrality = np.full(3 * n, highspy.HighsVarType.kContinuous)
        integrality[2 * n :][free_u] = highspy.HighsVarType.kInteger
        lp.integrality_ = integrality.tolist()
    h = new_highs()
    h.passModel(lp)
    t1 = time.perf_counter()
    start = None
    if milp:
        lp.integrality_ = []  # h holds its own copy of the MIP
        start = _rounded_start(lp, 2 * n + np.nonzero(free_u)[0], req.time_limit_s)
    options = stopping_options(model, req)
    options["time_limit"] = max(0.1, options["time_limit"] - (time.perf_counter() - t1))
    for key, val in options.items():
        h.setOptionValue(key, val)
    if start is not None:
        h.setSolution(start)
    h.run()
    t2 = time.perf_counter()
    status = h.getModelStatus()
    info = h.getInfo()
    name = {
        highspy.HighsModelStatus.kOptimal: "optimal",
        highspy.HighsModelStatus.kTimeLimit: "maxTimeLimit",
        highspy.HighsModelStatus.kInfeasible: "infeasible",
    }.get(status, h.modelStatusToString(status))
    if name not in ("optimal", "maxTimeLimit") or info.primal_solution_status == 0:
        return Dispatch(np.zeros((0, 0)), np.zeros((0, 0)), name, None), t1 - t0, t2 - t1
    col = np.asarray(h.getSolution().col_value)
    gap = _gap(info.objective_function_value, info.mip_dual_bound) if milp else 0.0
    p, r, u = (col[i * n : (i + 1) * n].reshape(n_g, n_t) for i in range(3))
    setpoint, reserve = split_groups(units, groups, p, r, u)
    return Dispatch(setpoint, reserve, name, gap), t1 - t0, t2 - t1


def stopping_options(model: GeneratorModel, req: CapabilityRequest) -> dict[str, float]:
    """HiGHS options: time limit (s) and the optimality tolerance, for both backends.

    ``req.mip_gap`` is applied to the generation cost, not only to the whole objective: the reserve term
    dominates the objective, so a relative gap of 1e-4 on it let HiGHS stop with a dispatch 4 % dearer than
    the optimum (3-generator test). The absolute gap is ``mip_gap`` x a lower bound of the generation cost
    (cheapest generator x demand, in scaled objective units); the reserve is then optimal to within
    ``mip_gap x that cost / value`` kWh, far below ``mip_gap`` of the capacity. Without a positive cost bound
    (no demand or free generators) the relative gap applies as usual."""
    floor = float(model.cost.min()) * model.slot_h * float(model.demand.sum()) if len(model.ids) else 0.0
    floor *= model.objective_scale
    if floor > 0:
        return {"time_limit": float(req.time_limit_s), "mip_rel_gap": 0.0, "mip_abs_gap": req.mip_gap * floor}
    return {"time_limit": float(req.time_limit_s), "mip_rel_gap": float(req.mip_gap)}


def _rounded_start(
    lp: highspy.HighsLp, u_cols: np.ndarray, time_limit_s: float
) -> highspy.HighsSolution | None:
    """MIP start: solve the LP relaxation, commit every unit with a fractional commitment (round ``u`` up) and
    re-solve the LP with the commitments fixed. Better incumbents than HiGHS's own root heuristics found on
    the 10,000-asset benchmark (the relaxation is tight; the incumbent was the bottleneck). None if the
    rounded commitment is infeasible (e.g. too many units above their minimum output)."""
    relax = new_highs()
    relax.setOptionValue("time_limit", float(time_limit_s) / 4)
    relax.passModel(lp)
    relax.run()
    if relax.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    x = np.asarray(relax.getSolution().col_value)
    u = np.clip(np.ceil(x[u_cols] - 1e-6), 0.0, 1.0)
    relax.changeColsBounds(len(u_cols), u_cols.astype(np.int32), u, u)
    relax.run()
    if relax.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return relax.getSolution()


def _gap(best: float, bound: float | None) -> float | None:
    """Relative gap between the best feasible objective and the dual bound."""
    if bound is None or not np.isfinite(bound):
        return None
    return abs(bound - best) / max(abs(best), 1e-9)


def _solve_pyomo(model: GeneratorModel, req: CapabilityRequest, t0: float) -> tuple[Dispatch, float, float]:
    """The reference: the same model written algebraically in Pyomo, solved by appsi HiGHS."""
    n_g, n_t = model.shape
    if n_g == 0:
        return _no_generators(model), time.perf_counter() - t0, 0.0
    up = model.up
    perspective = model.perspective()
    m = pyo.ConcreteModel()
    m.T = pyo.RangeSet(0, n_t - 1)
    m.G = pyo.RangeSet(0, n_g - 1)
    m.u = pyo.Var(m.G, m.T, domain=pyo.Binary)
    m.p = pyo.Var(m.G, m.T, domain=pyo.NonNegativeReals)
    m.r = pyo.Var(m.G, m.T, domain=pyo.NonNegativeReals)
    for g in range(n_g):
        for t in range(n_t):
            if model.u_lo[g, t] == model.u_hi[g, t]:
                m.u[g, t].fix(int(model.u_lo[g, t]))
            if not model.qualified[g]:
                m.r[g, t].fix(0)

    def pmin_rule(_m, g, t):
        return _m.p[g, t] >= model.p_min[g] * _m.u[g, t] if model.p_min[g] > 0 else pyo.Constraint.Skip

    def reserve_rule(_m, g, t):
        if not model.qualified[g]:
            return pyo.Constraint.Skip
        p_max, p_min = model.p_max[g], model.p_min[g]
        if up:
            extra = p_max * (1 - _m.u[g, t]) if model.fast[g] else 0.0
            return _m.r[g, t] <= p_max * _m.u[g, t] - _m.p[g, t] + extra
        return _m.r[g, t] <= _m.p[g, t] - p_min * _m.u[g, t]

    def ramp_reserve_rule(_m, g, t):
        if not model.qualified[g] or not np.isfinite(model.r_cap[g]):
            return pyo.Constraint.Skip
        if perspective[g]:
            return _m.r[g, t] <= model.r_cap[g] * _m.u[g, t]
        return _m.r[g, t] <= model.r_cap[g]

    def ramp_rule(_m, g, t):
        step = model.step[g]
        if not np.isfinite(step):
            return pyo.Constraint.Skip
        prev = _m.p[g, t - 1] if t > 0 else float(model.p0[g])
        return pyo.inequality(-step, _m.p[g, t] - prev, step)

    m.pmin = pyo.Constraint(m.G, m.T, rule=pmin_rule)
    m.pmax = pyo.Constraint(m.G, m.T, rule=lambda _m, g, t: _m.p[g, t] <= model.p_max[g] * _m.u[g, t])
    m.reserve = pyo.Constraint(m.G, m.T, rule=reserve_rule)
    m.ramp_reserve = pyo.Constraint(m.G, m.T, rule=ramp_reserve_rule)
    m.ramp = pyo.Constraint(m.G, m.T, rule=ramp_rule)
    m.balance = pyo.Constraint(m.T, rule=lambda _m, t: sum(_m.p[g, t] for g in _m.G) == model.demand[t])
    cost = model.cost_weight
    m.obj = pyo.Objective(
        expr=model.reserve_weight * pyo.quicksum(m.r.values())
        - pyo.quicksum(cost[g] * m.p[g, t] for g in range(n_g) for t in range(n_t)),
        sense=pyo.maximize,
    )
    solver = Highs()
    solver.config.time_limit = None
    solver.config.mip_gap = None
    solver.highs_options = stopping_options(model, req)
    solver.config.stream_solver = highs.SHOW_LOG
    solver.config.load_solution = False
    solver.set_instance(m)
    t1 = time.perf_counter()
    res = solver.solve(m)
    t2 = time.perf_counter()
    name = res.termination_condition.name
    ok = res.termination_condition in (TerminationCondition.optimal, TerminationCondition.maxTimeLimit)
    if not ok or res.best_feasible_objective is None:
        return Dispatch(np.zeros((0, 0)), np.zeros((0, 0)), name, None), t1 - t0, t2 - t1
    res.solution_loader.load_vars()
    p = np.array([[pyo.value(m.p[g, t]) for t in range(n_t)] for g in range(n_g)], dtype=float)
    r = np.array([[pyo.value(m.r[g, t]) for t in range(n_t)] for g in range(n_g)], dtype=float)
    return Dispatch(p, r, name, _gap(res.best_feasible_objective, res.best_objective_bound)), t1 - t0, t2 - t1


def _val(x: float) -> float:
    return 0.0 if abs(x) < EPS else round(float(x), 6)


def _infeasible(
    req: CapabilityRequest,
    excluded: list[tuple[str, ExclusionReason]],
    build_s: float,
    solve_s: float,
    status: str,
    backend: str,
) -> CapabilityResult:
    slots = tuple(
        SlotCapability(req.slot_start(t), req.slot_start(t + 1), 0.0, 0.0, 0.0) for t in range(req.slots)
    )
    return CapabilityResult(
        req.request_id,
        req.service.name,
        False,
        "DISPATCH_INFEASIBLE",
        slots,
        (),
        tuple(excluded),
        0,
        build_s,
        solve_s,
        status,
        None,
        backend,
    )


def _result(
    req: CapabilityRequest,
    gens: list[Asset],
    others: list[Asset],
    headroom: dict[tuple[str, int], float],
    qualified: dict[str, Asset],
    excluded: list[tuple[str, ExclusionReason]],
    dispatch: Dispatch,
    build_s: float,
    solve_s: float,
    backend: str,
) -> CapabilityResult:
    slots = range(req.slots)
    slot_h = req.slot_minutes / 60.0
    assignments: list[AssetAssignment] = []
    cap = [0.0] * req.slots
    low = [0.0] * req.slots
    high = [0.0] * req.slots
    cost = 0.0
    for i, g in enumerate(gens):
        reserve = tuple(_val(x) for x in dispatch.reserve_kw[i].tolist())
        setpoints = tuple(_val(x) for x in dispatch.setpoint_kw[i].tolist())
        cost += sum(setpoints) * slot_h * g.marginal_cost_micro_per_kwh
        if g.asset_id in qualified or max(setpoints) > EPS:
            assignments.append(
                AssetAssignment(g.asset_id, g.kind, reserve, setpoints, g.effective_response_s())
            )
        for t in slots:
            cap[t] += reserve[t]
            low[t] += reserve[t] * g.uncertainty_min
            high[t] += reserve[t] * g.uncertainty_max
    for a in others:
        reserve = tuple(round(headroom[a.asset_id, t], 6) for t in slots)
        assignments.append(AssetAssignment(a.asset_id, a.kind, reserve, None, a.effective_response_s()))
        for t in slots:
            cap[t] += reserve[t]
            low[t] += reserve[t] * a.uncertainty_min
            high[t] += reserve[t] * a.uncertainty_max
    per_slot = tuple(
        SlotCapability(
            req.slot_start(t), req.slot_start(t + 1), round(cap[t], 6), round(low[t], 6), round(high[t], 6)
        )
        for t in slots
    )
    feasible = min(cap) + EPS >= req.service.min_size_kw
    return CapabilityResult(
        req.request_id,
        req.service.name,
        feasible,
        None if feasible else "BELOW_MIN_SIZE",
        per_slot,
        tuple(assignments),
        tuple(excluded),
        int(round(cost)),
        build_s,
        solve_s,
        dispatch.status,
        dispatch.mip_gap,
        backend,
    )
