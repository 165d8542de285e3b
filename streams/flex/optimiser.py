"""Offer optimisation (LL-UC06): choose prosumers and per-slot allocations covering a request at least cost.

Pure function over arrays. Model (LP, or MILP when activation costs are given)::

    min  sum_ps c[p,s] x[p,s] + sum_p a[p] y[p] + M sum_s short[s]
    s.t. sum_p x[p,s] + short[s] = req[s]                  (every slot)
         0 <= x[p,s] <= cap[p,s]                           (availability and asset limits, kW)
         x[p,s] <= cap[p,s] y[p],  y binary                (only with activation costs)
         short[s] >= 0                                     (soft cover: shortfall reported, not infeasible)

``c`` is the per-kW cost for one slot (incentive + risk margin, micro-units per kW); ``M`` the shortfall penalty.
Two backends solve the same model with HiGHS: ``highspy`` builds the sparse column-wise matrix directly from
numpy (fast; default), ``pyomo`` builds a Pyomo model solved by ``appsi_highs`` (reference; slower to build).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np

from streams.highs import new_highs

Backend = Literal["highspy", "pyomo"]
EPS_KW = 1e-6


class OptimisationError(RuntimeError):
    """The solver failed (not: the request is infeasible - that is reported as shortfall)."""


@dataclass(frozen=True)
class Problem:
    """Inputs. Arrays are (P, S): P prosumers x S slots; kW and micro-units per kW per slot.

    requested_kw: (S,) flexibility to cover per slot, kW >= 0.
    cap_kw: (P, S) available flexibility, kW >= 0 (0 = unavailable).
    cost_micro_per_kw: (P, S) cost of allocating 1 kW for the whole slot, micro-units.
    activation_micro: (P,) fixed cost of using a prosumer at all, or None (pure LP).
    shortfall_penalty_micro_per_kw: M; default 10 x the largest unit cost (+1) so covering always wins.
    """

    prosumer_ids: tuple[str, ...]
    requested_kw: np.ndarray
    cap_kw: np.ndarray
    cost_micro_per_kw: np.ndarray
    activation_micro: np.ndarray | None = None
    shortfall_penalty_micro_per_kw: float | None = None

    def __post_init__(self) -> None:
        p, s = len(self.prosumer_ids), len(self.requested_kw)
        if self.cap_kw.shape != (p, s) or self.cost_micro_per_kw.shape != (p, s):
            raise ValueError(f"cap/cost must be shape ({p}, {s})")
        if self.activation_micro is not None and self.activation_micro.shape != (p,):
            raise ValueError(f"activation_micro must be shape ({p},)")
        if (self.requested_kw < 0).any() or (self.cap_kw < 0).any():
            raise ValueError("requested_kw and cap_kw must be >= 0")

    @property
    def penalty(self) -> float:
        if self.shortfall_penalty_micro_per_kw is not None:
            return self.shortfall_penalty_micro_per_kw
        top = float(self.cost_micro_per_kw.max()) if self.cost_micro_per_kw.size else 0.0
        if self.activation_micro is not None and self.activation_micro.size:
            top += float(self.activation_micro.max())
        return 10.0 * max(top, 0.0) + 1.0


@dataclass(frozen=True)
class Solution:
    """allocation_kw: (P, S) kW (rounded to W); shortfall_kw: (S,); cost_micro: incentive + risk (+ activation)
    cost of the allocation, excluding the shortfall penalty; timings in seconds."""

    allocation_kw: np.ndarray
    shortfall_kw: np.ndarray
    cost_micro: int
    backend: str
    build_s: float
    solve_s: float
    stats: dict[str, float] = field(default_factory=dict)

    def selected(self) -> list[int]:
        return [int(i) for i in np.nonzero(self.allocation_kw.sum(axis=1) > EPS_KW)[0]]


def optimise(problem: Problem, backend: Backend = "highspy", time_limit_s: float = 30.0) -> Solution:
    """Solve ``problem``; always returns a solution (shortfall > 0 when the portfolio cannot cover)."""
    if backend == "highspy":
        return _solve_highspy(problem, time_limit_s)
    if backend == "pyomo":
        return _solve_pyomo(problem, time_limit_s)
    raise ValueError(f"unknown backend {backend!r}")


def round_to_watts(x_kw: np.ndarray, cap_kw: np.ndarray) -> np.ndarray:
    """Round (P, S) kW to whole W per cell so each slot's total is the rounded total (largest remainder).

    A cell may exceed its cap by less than 1 W (cap rounded up to whole W): immaterial for a device, and it
    avoids spreading sub-watt remainders over extra prosumers."""
    w = np.clip(x_kw, 0.0, None) * 1000.0
    cap_w = np.ceil(cap_kw * 1000.0 - 1e-6) + 1e-6
    floor = np.minimum(np.floor(w + 1e-6), np.floor(cap_w))
    missing = np.round(w.sum(axis=0)) - floor.sum(axis=0)  # whole W still to hand out per slot
    frac = np.where(floor + 1.0 <= cap_w, w - floor, -1.0)
    for s in np.nonzero(missing > 0)[0]:
        top = np.argsort(-frac[:, s], kind="stable")[: int(missing[s])]
        floor[top[frac[top, s] >= 0], s] += 1.0
    return floor / 1000.0


def _finish(
    problem: Problem, x: np.ndarray, used: np.ndarray | None, backend: str, b: float, s: float
) -> Solution:
    x = round_to_watts(np.clip(x, 0.0, problem.cap_kw), problem.cap_kw)
    short = np.round(np.maximum(problem.requested_kw - x.sum(axis=0), 0.0), 3)
    cost = float((problem.cost_micro_per_kw * x).sum())
    if problem.activation_micro is not None:
        active = x.sum(axis=1) > EPS_KW if used is None else used
        cost += float(problem.activation_micro[active].sum())
    return Solution(x, short, int(round(cost)), backend, b, s)


def _solve_highspy(problem: Problem, time_limit_s: float) -> Solution:
    t0 = time.perf_counter()
    n_p, n_s = problem.cap_kw.shape
    pi, si = np.nonzero(
        problem.cap_kw > EPS_KW
    )  # only variables that can be non-zero (row-major: sorted by p)
    n_x = len(pi)
    milp = problem.activation_micro is not None
    n_y = n_p if milp else 0
    n_col = n_x + n_s + n_y
    inf = highspy.kHighsInf

    cost = np.concatenate(
        [
            problem.cost_micro_per_kw[pi, si],
            np.full(n_s, problem.penalty),
            problem.activation_micro if milp else np.empty(0),
        ]
    )
    lower = np.zeros(n_col)
    upper = np.concatenate([problem.cap_kw[pi, si], np.full(n_s, inf), np.ones(n_y)])

    # Column-wise matrix. Rows 0..S-1: cover; rows S..S+n_x-1 (MILP only): x - cap*y <= 0.
    n_link = n_x if milp else 0
    x_nnz = 2 if milp else 1
    starts = [np.arange(n_x) * x_nnz, n_x * x_nnz + np.arange(n_s)]
    x_index = np.empty(n_x * x_nnz, dtype=np.int32)
    x_value = np.ones(n_x * x_nnz)
    if milp:
        x_index[0::2] = si
        x_index[1::2] = n_s + np.arange(n_x)
    else:
        x_index[:] = si
    indices = [x_index, np.arange(n_s, dtype=np.int32)]
    values = [x_value, np.ones(n_s)]
    if milp:
        # y_p appears in the link rows of its x variables (contiguous because pi is sorted)
        counts = np.bincount(pi, minlength=n_p)
        y_start = n_x * x_nnz + n_s + np.concatenate([[0], np.cumsum(counts)[:-1]])
        starts.append(y_start)
        indices.append((n_s + np.arange(n_x)).astype(np.int32))
        values.append(-problem.cap_kw[pi, si])
    row_lower = np.concatenate([problem.requested_kw, np.full(n_link, -inf)])
    row_upper = np.concatenate([problem.requested_kw, np.zeros(n_link)])

    lp = highspy.HighsLp()
    lp.num_col_ = n_col
    lp.num_row_ = n_s + n_link
    lp.col_cost_ = cost
    lp.col_lower_ = lower
    lp.col_upper_ = upper
    lp.row_lower_ = row_lower
    lp.row_upper_ = row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.concatenate([*starts, [sum(len(i) for i in indices)]]).astype(np.int32)
    lp.a_matrix_.index_ = np.concatenate(indices).astype(np.int32)
    lp.a_matrix_.value_ = np.concatenate(values)
    if milp:
        lp.integrality_ = [highspy.HighsVarType.kContinuous] * (n_x + n_s) + [
            highspy.HighsVarType.kInteger
        ] * n_y
    h = new_highs(time_limit_s)
    h.passModel(lp)
    t1 = time.perf_counter()
    h.run()
    t2 = time.perf_counter()
    status = h.getModelStatus()
    if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kTimeLimit):
        raise OptimisationError(f"HiGHS status {h.modelStatusToString(status)}")
    col = np.asarray(h.getSolution().col_value)
    x = np.zeros((n_p, n_s))
    x[pi, si] = col[:n_x]
    used = col[n_x + n_s :] > 0.5 if milp else None
    return _finish(problem, x, used, "highspy", t1 - t0, t2 - t1)


def _solve_pyomo(problem: Problem, time_limit_s: float) -> Solution:
    import pyomo.environ as pyo

    t0 = time.perf_counter()
    n_p, n_s = problem.cap_kw.shape
    pi, si = np.nonzero(problem.cap_kw > EPS_KW)
    pairs = list(zip(pi.tolist(), si.tolist(), strict=True))
    cap = {(p, s): float(problem.cap_kw[p, s]) for p, s in pairs}
    c = {(p, s): float(problem.cost_micro_per_kw[p, s]) for p, s in pairs}
    milp = problem.activation_micro is not None

    m = pyo.ConcreteModel()
    m.PS = pyo.Set(initialize=pairs, dimen=2)
    m.S = pyo.RangeSet(0, n_s - 1)
    m.x = pyo.Var(m.PS, bounds=lambda _m, p, s: (0.0, cap[p, s]))
    m.short = pyo.Var(m.S, domain=pyo.NonNegativeReals)
    by_slot: dict[int, list[tuple[int, int]]] = {s: [] for s in range(n_s)}
    for p, s in pairs:
        by_slot[s].append((p, s))
    obj = sum(c[k] * m.x[k] for k in pairs) + problem.penalty * sum(m.short[s] for s in m.S)
    if milp:
        assert problem.activation_micro is not None
        m.P = pyo.Set(initialize=sorted(set(pi.tolist())))
        m.y = pyo.Var(m.P, domain=pyo.Binary)
        m.link = pyo.Constraint(m.PS, rule=lambda _m, p, s: _m.x[p, s] <= cap[p, s] * _m.y[p])
        obj = obj + sum(float(problem.activation_micro[p]) * m.y[p] for p in m.P)
    m.cover = pyo.Constraint(
        m.S,
        rule=lambda _m, s: sum(_m.x[k] for k in by_slot[s]) + _m.short[s] == float(problem.requested_kw[s]),
    )
    m.obj = pyo.Objective(expr=obj, sense=pyo.minimize)
    solver = pyo.SolverFactory("appsi_highs")
    solver.config.time_limit = time_limit_s
    t1 = time.perf_counter()
    solver.solve(m, load_solutions=True)
    t2 = time.perf_counter()
    x = np.zeros((n_p, n_s))
    for p, s in pairs:
        x[p, s] = pyo.value(m.x[p, s])
    used = None
    if milp:
        used = np.zeros(n_p, dtype=bool)
        for p in m.P:
            used[p] = pyo.value(m.y[p]) > 0.5
    return _finish(problem, x, used, "pyomo", t1 - t0, t2 - t1)
