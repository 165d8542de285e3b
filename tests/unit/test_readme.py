"""The README's topic tables are generated from topology.yaml and must not drift."""

from __future__ import annotations

import re

from edream.docs import internal_topic_table, topic_table
from edream.paths import REPO_ROOT, TOPOLOGY_FILE
from edream.topology import load_topology


def test_readme_topic_table_matches_topology():
    readme = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- topics:begin -->\n(.*?)\n?<!-- topics:end -->", readme, re.S)
    assert m, "README needs the <!-- topics:begin/end --> markers"
    expected = topic_table(load_topology(TOPOLOGY_FILE))
    assert m.group(1).strip() == expected, "run: python -m edream.docs --write-readme"


def test_readme_internal_topic_table_matches_topology():
    from edream.runtime.stages import runtime_stages

    readme = (REPO_ROOT / "README.md").read_text()
    m = re.search(r"<!-- internal-topics:begin -->\n(.*?)\n?<!-- internal-topics:end -->", readme, re.S)
    assert m, "README needs the <!-- internal-topics:begin/end --> markers"
    topo = load_topology(TOPOLOGY_FILE)
    assert m.group(1).strip() == internal_topic_table(topo, runtime_stages(topo)), (
        "run: python -m edream.docs --write-readme"
    )
