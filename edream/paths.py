"""Where the platform's declarative files live (repository layout, editable install)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
AVRO_DIR = REPO_ROOT / "avro"
TOPOLOGY_FILE = REPO_ROOT / "topology.yaml"
CONTRACTS_DIR = REPO_ROOT / "contracts"
CONNECTOR_CONFIG_DIR = REPO_ROOT / "connectors" / "config"
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
