"""Load a pandapower network from simbench (``simbench:<code>``) or a pandapower JSON file, and check it is usable:
an external grid, every in-service bus supplied (a disconnected network is an error, not a silent zero flow)."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pandapower as pp
import pandapower.topology as top

from streams.grid.config import GridConfigError

SIMBENCH_PREFIX = "simbench:"


@cache
def _simbench(code: str) -> pp.pandapowerNet:
    import simbench as sb

    try:
        return sb.get_simbench_net(code)
    except Exception as exc:  # simbench raises plain errors on unknown codes
        raise GridConfigError(f"network {SIMBENCH_PREFIX}{code}: not a simbench grid code ({exc})") from None


def load_network(network: str, where: str = "network") -> pp.pandapowerNet:
    """A fresh (mutable) copy of the network named by ``network``: ``simbench:<code>`` or a pandapower JSON path
    (both parsed once per process, a few seconds). ``where`` prefixes errors (the mapping file's field)."""
    if network.startswith(SIMBENCH_PREFIX):
        return copy.deepcopy(_simbench(network.removeprefix(SIMBENCH_PREFIX)))
    path = Path(network)
    if not path.is_file():
        raise GridConfigError(f"{where}: no such pandapower JSON file: {network}")
    try:
        return copy.deepcopy(_json(str(path.resolve()), path.stat().st_mtime_ns))
    except Exception as exc:
        raise GridConfigError(f"{where}: not a pandapower JSON network: {network} ({exc})") from None


@cache
def _json(path: str, mtime_ns: int) -> pp.pandapowerNet:
    """A pandapower JSON network, parsed once per file version (parsing takes about a second)."""
    return pp.from_json(path)


def check_supplied(net: pp.pandapowerNet, where: str = "network") -> None:
    """Raise :class:`GridConfigError` unless the network has an in-service external grid and every in-service bus
    is connected to it (names up to five unsupplied buses)."""
    if not len(net.ext_grid) or not net.ext_grid.in_service.any():
        raise GridConfigError(f"{where}: the network has no in-service external grid (slack)")
    unsupplied = sorted(top.unsupplied_buses(net) & set(net.bus.index[net.bus.in_service]))
    if unsupplied:
        names = [f"{net.bus.at[b, 'name']!s} ({b})" for b in unsupplied[:5]]
        more = f" and {len(unsupplied) - 5} more" if len(unsupplied) > 5 else ""
        raise GridConfigError(f"{where}: disconnected network: bus(es) {', '.join(names)}{more} not supplied")


def downstream_buses(net: pp.pandapowerNet, kind: str, index: int) -> frozenset[int]:
    """Buses whose supply passes through branch ``kind``/``index``: the buses unsupplied once it is opened."""
    opened = copy.deepcopy(net)
    opened[kind].at[index, "in_service"] = False
    return frozenset(top.unsupplied_buses(opened))
