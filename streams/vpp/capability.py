"""VPP capability for reserve and frequency services: unit commitment + economic dispatch MILP (Pyomo + HiGHS).

Per request (one service, a window of slots) the optimiser:
1. prequalifies every asset for the service (direction, response time incl. start-up, energy) -> ``excluded``;
2. solves, over all slots t, a MILP with for every available generator g a commitment ``u[g,t]`` (binary),
   set point ``p[g,t]`` (kW) and reserve ``r[g,t]`` (kW, 0 if not prequalified), and for every other prequalified
   asset a reserve ``r[a,t]`` within its headroom:
   - ``p_min u <= p <= p_max u``; generators that are off now stay off until their start-up time has elapsed
     (counting the lead time between ``now`` and the window start);
   - between slots ``|p[t] - p[t-1]| <= max(ramp x slot seconds, p_min)``, ``p[-1]`` = current set point;
   - UP: ``r <= p_max u - p`` (+ ``p_max (1 - u)`` for an off generator fast enough to start within the
     response time); DOWN: ``r <= p - p_min u``; and ``r <= ramp x max_response_s`` (ramp-limited delivery);
   - the generators cover the demand schedule: ``sum_g p[g,t] = demand_kw[t]`` (default: their current output);
   - maximise ``value x sum r x slot hours - sum marginal cost x p x slot hours`` where ``value`` is the offered
     price per kW and hour, or a value that dominates any generation cost (capacity first, then cheapest dispatch).
   Reserves of non-generator assets are independent of each other and of the dispatch, so their optimum is
   their headroom and they are added in closed form (keeps the MILP small). Headroom (kW): BESS ``min(p_max -/+ current, usable kWh / duration h)``; loads/EVSE UP
   ``consumption x curtailable share``, DOWN ``p_max - consumption``; PV/wind DOWN = output, UP = 0.
3. reports deliverable capacity per slot with an uncertainty band (reserve of forecast-based assets times their
   ``uncertainty_min``/``uncertainty_max``), the set points and the coalition (assets with reserve > 0).
``feasible`` = every slot's capacity >= the service's minimum size and the dispatch problem is feasible.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pyomo.environ as pyo
from pyomo.contrib.appsi.base import TerminationCondition
from pyomo.contrib.appsi.solvers import Highs

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

EPS = 1e-6
STREAM_SOLVER = False  # set True to see the HiGHS log


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


def evaluate_capability(assets: list[Asset], req: CapabilityRequest) -> CapabilityResult:
    """Solve the capability problem for one request (see module doc)."""
    t_build = time.perf_counter()
    service = req.service
    up = service.direction == Direction.UP
    slots = range(req.slots)
    slot_s = req.slot_minutes * 60.0
    slot_h = slot_s / 3600.0
    lead_s = max(0.0, (req.window_start_ms - (req.now_ms or req.window_start_ms)) / 1000.0)

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
    headroom = {(a.asset_id, t): headroom_kw(a, service, t) for a in others for t in slots}
    demand = req.demand_kw or tuple(sum(g.current_kw for g in gens if g.is_on) for _ in slots)
    max_cost = max([g.marginal_cost_micro_per_kwh for g in gens] + [1])
    value = req.price_micro_per_kw_h if req.price_micro_per_kw_h is not None else 1000.0 * max_cost

    if not gens:  # nothing to dispatch: closed-form reserves only (an empty model has no solver solution)
        if any(d > EPS for d in demand):
            return _infeasible(req, excluded, 0.0, 0.0)
        return _result(req, gens, others, headroom, qualified, excluded, None, 0.0, 0.0)

    m = pyo.ConcreteModel()
    gid = [g.asset_id for g in gens]
    gby = {g.asset_id: g for g in gens}
    m.T = pyo.Set(initialize=list(slots), ordered=True)
    m.G = pyo.Set(initialize=gid, ordered=True)
    m.u = pyo.Var(m.G, m.T, domain=pyo.Binary)
    m.p = pyo.Var(m.G, m.T, domain=pyo.NonNegativeReals)
    m.r = pyo.Var(m.G, m.T, domain=pyo.NonNegativeReals)

    def fast(g: Asset) -> bool:
        return g.start_up_time_s + g.response_time_s <= service.max_response_s

    for g in gens:
        for t in slots:
            if not g.is_on and lead_s + t * slot_s < g.start_up_time_s:
                m.u[g.asset_id, t].fix(0)
            if g.asset_id not in qualified:
                m.r[g.asset_id, t].fix(0)

    m.pmin = pyo.Constraint(m.G, m.T, rule=lambda _m, g, t: _m.p[g, t] >= gby[g].p_min_kw * _m.u[g, t])
    m.pmax = pyo.Constraint(m.G, m.T, rule=lambda _m, g, t: _m.p[g, t] <= gby[g].p_max_kw * _m.u[g, t])

    def reserve_rule(_m, g, t):
        a = gby[g]
        if up:
            extra = a.p_max_kw * (1 - _m.u[g, t]) if fast(a) else 0.0
            return _m.r[g, t] <= a.p_max_kw * _m.u[g, t] - _m.p[g, t] + extra
        return _m.r[g, t] <= _m.p[g, t] - a.p_min_kw * _m.u[g, t]

    m.reserve = pyo.Constraint(m.G, m.T, rule=reserve_rule)

    def ramp_reserve_rule(_m, g, t):
        a = gby[g]
        if a.ramp_kw_per_s is None:
            return pyo.Constraint.Skip
        return _m.r[g, t] <= a.ramp_kw_per_s * service.max_response_s

    m.ramp_reserve = pyo.Constraint(m.G, m.T, rule=ramp_reserve_rule)

    def step(a: Asset) -> float:
        return max(a.ramp_kw_per_s * slot_s, a.p_min_kw) if a.ramp_kw_per_s is not None else float("inf")

    def prev(_m, g, t):
        a = gby[g]
        return _m.p[g, t - 1] if t > 0 else (a.current_kw if a.is_on else 0.0)

    def ramp_up_rule(_m, g, t):
        s = step(gby[g])
        return _m.p[g, t] - prev(_m, g, t) <= s if s != float("inf") else pyo.Constraint.Skip

    def ramp_down_rule(_m, g, t):
        s = step(gby[g])
        return prev(_m, g, t) - _m.p[g, t] <= s if s != float("inf") else pyo.Constraint.Skip

    m.ramp_up = pyo.Constraint(m.G, m.T, rule=ramp_up_rule)
    m.ramp_down = pyo.Constraint(m.G, m.T, rule=ramp_down_rule)
    m.balance = pyo.Constraint(m.T, rule=lambda _m, t: sum(_m.p[g, t] for g in _m.G) == demand[t])
    m.obj = pyo.Objective(
        expr=slot_h
        * (
            value * pyo.quicksum(m.r.values())
            - pyo.quicksum(gby[g].marginal_cost_micro_per_kwh * m.p[g, t] for g in gid for t in slots)
        ),
        sense=pyo.maximize,
    )
    build_s = time.perf_counter() - t_build

    t_solve = time.perf_counter()
    solver = Highs()
    solver.config.time_limit = req.time_limit_s
    solver.config.mip_gap = req.mip_gap
    solver.config.stream_solver = STREAM_SOLVER
    solver.config.load_solution = False
    res = solver.solve(m)
    solve_s = time.perf_counter() - t_solve
    if res.termination_condition not in (TerminationCondition.optimal, TerminationCondition.maxTimeLimit) or (
        res.best_feasible_objective is None
    ):
        return _infeasible(req, excluded, build_s, solve_s)
    res.solution_loader.load_vars()
    out = _result(req, gens, others, headroom, qualified, excluded, m, build_s, solve_s)
    best, bound = res.best_feasible_objective, res.best_objective_bound
    gap = abs(bound - best) / max(abs(best), 1e-9) if bound is not None else None
    return replace(out, solver_status=str(res.termination_condition.name), mip_gap=gap)


def _val(v: pyo.Var) -> float:
    x = pyo.value(v)
    return 0.0 if x is None or abs(x) < EPS else round(float(x), 6)


def _infeasible(req: CapabilityRequest, excluded, build_s: float, solve_s: float) -> CapabilityResult:
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
    )


def _result(req, gens, others, headroom, qualified, excluded, m, build_s, solve_s) -> CapabilityResult:
    slots = range(req.slots)
    slot_h = req.slot_minutes / 60.0
    assignments: list[AssetAssignment] = []
    cap = [0.0] * req.slots
    low = [0.0] * req.slots
    high = [0.0] * req.slots
    cost = 0.0
    for g in gens:
        reserve = tuple(_val(m.r[g.asset_id, t]) for t in slots)
        setpoints = tuple(_val(m.p[g.asset_id, t]) for t in slots)
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
    )
