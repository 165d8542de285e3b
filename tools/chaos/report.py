"""The suite's result: a table per kind of record, the faults, the checks at the end, and the verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tools.chaos.accounting import KindAccount
from tools.chaos.faults import Fault


@dataclass
class WindowCheck:
    """``edream verify window`` of one anchored window after a restart (``after``: which start of the platform)."""

    after: str
    window_id: str
    exit_code: int
    line: str

    @property
    def valid(self) -> bool:
        return self.exit_code == 0


@dataclass
class ChaosReport:
    plan: str
    faults: list[Fault] = field(default_factory=list)
    accounts: list[KindAccount] = field(default_factory=list)
    windows: list[WindowCheck] = field(default_factory=list)
    windows_expected: int = 0
    stages_down: list[str] = field(default_factory=list)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)  # anything else that failed (never ready, ...)

    @property
    def lost(self) -> int:
        return sum(a.lost for a in self.accounts)

    @property
    def duplicated(self) -> int:
        return sum(a.duplicated for a in self.accounts)

    @property
    def wrongly_accepted(self) -> int:
        return sum(a.wrongly_accepted for a in self.accounts)

    @property
    def invalid_windows(self) -> list[WindowCheck]:
        return [w for w in self.windows if not w.valid]

    @property
    def passed(self) -> bool:
        return (
            not self.problems
            and self.lost == 0
            and self.duplicated == 0
            and self.wrongly_accepted == 0
            and not self.invalid_windows
            and not self.stages_down
            and bool(self.accounts)
        )

    def failures(self) -> list[str]:
        out = list(self.problems)
        for a in self.accounts:
            for what in ("lost", "duplicated", "wrongly_accepted"):
                if getattr(a, what):
                    out.append(f"{a.kind}: {getattr(a, what)} {what} (e.g. {', '.join(a.examples[:3])})")
        out += [f"window {w.window_id} after {w.after}: {w.line}" for w in self.invalid_windows]
        if self.stages_down:
            out.append(f"stages down at the end: {', '.join(self.stages_down)}")
        return out

    def table(self) -> str:
        head = f"{'records':<20}{'in':>8}{'accounted':>11}{'lost':>6}{'dup':>6}{'wrong':>7}  where"
        lines = [head, "-" * len(head)]
        for a in self.accounts:
            where = ", ".join(f"{k} {v}" for k, v in a.where.items())
            lines.append(
                f"{a.kind:<20}{a.sent:>8}{a.accounted:>11}{a.lost:>6}{a.duplicated:>6}{a.wrongly_accepted:>7}  "
                f"{where}"
            )
        total_in = sum(a.sent for a in self.accounts)
        total_acc = sum(a.accounted for a in self.accounts)
        lines.append(
            f"{'total':<20}{total_in:>8}{total_acc:>11}{self.lost:>6}{self.duplicated:>6}{self.wrongly_accepted:>7}"
        )
        lines.append("")
        lines.append(f"{'fault':<8}{'target':<22}{'held s':>8}{'recovered in s':>16}")
        for f in self.faults:
            rec = "never" if f.recovery_s is None else f"{f.recovery_s:.1f}"
            lines.append(f"{f.kind:<8}{f.target:<22}{f.duration_s:>8.1f}{rec:>16}")
        valid = len(self.windows) - len(self.invalid_windows)
        lines.append("")
        lines.append(
            f"anchored windows verified: {valid}/{len(self.windows)} VALID "
            f"({self.windows_expected} distinct windows expected)"
        )
        lines.append(f"stages down at the end: {', '.join(self.stages_down) or 'none'}")
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'} in {self.seconds:.0f} s")
        lines += [f"  - {p}" for p in self.failures()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        recoveries = [f.recovery_s for f in self.faults if f.recovery_s is not None]
        return {
            "bench": "chaos",
            "plan": self.plan,
            "passed": self.passed,
            "seconds": round(self.seconds, 1),
            "faults": len(self.faults),
            "faults_survived": sum(1 for f in self.faults if f.recovery_s is not None),
            "recovery_s_max": max(recoveries, default=None),
            "recovery_s_median": sorted(recoveries)[len(recoveries) // 2] if recoveries else None,
            "records_in": sum(a.sent for a in self.accounts),
            "records_accounted": sum(a.accounted for a in self.accounts),
            "lost": self.lost,
            "duplicated": self.duplicated,
            "wrongly_accepted": self.wrongly_accepted,
            "windows_verified": len(self.windows),
            "windows_invalid": len(self.invalid_windows),
            "stages_down": self.stages_down,
            "accounts": [asdict(a) for a in self.accounts],
            "fault_log": [f.to_dict() for f in self.faults],
            "failures": self.failures(),
        }
