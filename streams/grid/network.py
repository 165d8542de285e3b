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


def downstream_buses(net: pp.pandapowerNet, branches: list[tuple[str, int]]) -> list[frozenset[int]]:
    """Per branch (``kind``, index), the buses whose supply passes through it: those cut off from the external
    grid once it is opened (switch positions respected; an open branch supplies nothing). One graph for all."""
    import networkx as nx

    graph = top.create_nxgraph(net, respect_switches=True)
    slack = [int(b) for b in net.ext_grid.bus[net.ext_grid.in_service]]

    def supplied() -> set[int]:
        return set().union(*(nx.node_connected_component(graph, b) for b in slack))

    everything = supplied()
    by_key: dict[tuple[str, int], list[tuple[int, int, tuple[str, int]]]] = {}
    for u, v, k in graph.edges(keys=True):
        by_key.setdefault((k[0], int(k[1])), []).append((u, v, k))
    out = []
    for kind, idx in branches:
        edges = by_key.get((kind, int(idx)), [])
        if not edges:
            out.append(frozenset())
            continue
        data = [graph.get_edge_data(*e) for e in edges]
        graph.remove_edges_from(edges)
        out.append(frozenset(everything - supplied()))
        graph.add_edges_from((u, v, k, d) for (u, v, k), d in zip(edges, data, strict=True))
    return out
