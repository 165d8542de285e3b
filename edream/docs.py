"""Generated documentation fragments (the README's topic table is checked against these)."""

from __future__ import annotations

from edream.topology import Topology


def _retention(ms: int) -> str:
    if ms < 0:
        return "forever"
    days = ms / 86_400_000
    if days >= 1:
        return f"{days:g} d"
    return f"{ms / 3_600_000:g} h" if ms >= 3_600_000 else f"{ms / 60_000:g} min"


def topic_table(topo: Topology) -> str:
    producers: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for a in topo.agents:
        for t in a.outputs:
            producers.setdefault(t, []).append(a.name)
        for t in a.inputs:
            consumers.setdefault(t, []).append(a.name)
    for c in topo.connectors:
        producers.setdefault(c.output, []).append(f"connector {c.name}")
        if c.commands:
            consumers.setdefault(c.commands, []).append(f"connector {c.name}")
        if c.command_results:
            producers.setdefault(c.command_results, []).append(f"connector {c.name}")
    for s in topo.sinks:
        consumers.setdefault(s.topic, []).append(f"ClickHouse `{s.table}`")
    lines = [
        "| Topic | Key | Value schema | Partitions | Retention / policy | Written by | Read by |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in topo.topics:
        lines.append(
            f"| `{t.name}` | {t.key} | `{t.value_schema}` | {t.partitions} | {_retention(t.retention_ms)}, "
            f"{t.cleanup_policy.value} | {', '.join(producers.get(t.name, [])) or '-'} | "
            f"{', '.join(consumers.get(t.name, [])) or '-'} |"
        )
    return "\n".join(lines)


def internal_topic_table(topo: Topology, stages: list[str]) -> str:
    """The topics the stage runtime creates for each of ``stages`` (the agents running on it), from the
    topology's ``internal_topics`` templates, ``{app}`` left as the placeholder of ``EDREAM_APP_ID``."""
    lines = ["| Topic | Stage | Retention / policy | What |", "|---|---|---|---|"]
    for name in stages:
        agent = topo.agent(name)
        for it in topo.internal_topics:
            retention = "derived" if it.retention_ms is None else _retention(it.retention_ms)
            for topic in it.names("{app}", agent):
                lines.append(
                    f"| `{topic}` | {name} | {retention}, {it.cleanup_policy.value} | {it.description} |"
                )
    return "\n".join(lines)


def _replace_block(text: str, marker: str, body: str) -> str:
    import re

    block = f"<!-- {marker}:begin -->\n{body}\n<!-- {marker}:end -->"
    return re.sub(rf"<!-- {marker}:begin -->.*?<!-- {marker}:end -->", lambda _: block, text, flags=re.S)


def write_readme_topic_table(readme_path, topology) -> None:
    """Replace the blocks between ``<!-- topics:begin/end -->`` and ``<!-- internal-topics:begin/end -->``."""
    from edream.runtime.stages import runtime_stages

    text = _replace_block(readme_path.read_text(), "topics", topic_table(topology))
    text = _replace_block(text, "internal-topics", internal_topic_table(topology, runtime_stages(topology)))
    readme_path.write_text(text)


if __name__ == "__main__":
    import sys

    from edream.paths import REPO_ROOT, TOPOLOGY_FILE
    from edream.topology import load_topology

    if "--write-readme" in sys.argv:
        write_readme_topic_table(REPO_ROOT / "README.md", load_topology(TOPOLOGY_FILE))
