"""Compiled contract artifacts (``contracts/artifacts/<Name>.json``, produced by ``contracts/compile.js``)."""

from __future__ import annotations

import ast
import json
import re
from functools import cache
from typing import Any

from eth_hash.auto import keccak

from edream.paths import CONTRACTS_DIR

ARTIFACTS_DIR = CONTRACTS_DIR / "artifacts"
CONTRACT_NAMES = ("AnchorRegistry", "ContractTermsRegistry")


@cache
def load_artifact(name: str) -> dict[str, Any]:
    """``{"contractName", "compiler", "settings", "abi", "bytecode", "deployedBytecode"}``."""
    return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())


def error_selectors(name: str) -> dict[bytes, str]:
    """4-byte selector -> custom error name, for decoding reverts of contract ``name``."""
    out = {}
    for item in load_artifact(name)["abi"]:
        if item["type"] == "error":
            sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            out[keccak(sig.encode())[:4]] = item["name"]
    return out


def revert_reason(exc: BaseException, name: str) -> str | None:
    """Name of the custom error carried by a revert exception from web3 or eth-tester, if recognisable.

    Looks for the 4-byte selector, raw (eth-tester) or hex-encoded (JSON-RPC error data), in the exception."""
    blobs: list[bytes] = []
    for arg in (*getattr(exc, "args", ()), getattr(exc, "data", None), getattr(exc, "message", None)):
        if isinstance(arg, bytes):
            blobs.append(arg)
        elif isinstance(arg, str):
            blobs.append(arg.encode("latin-1", "ignore"))
            blobs.extend(_bytes_literals(arg))
    for sel, err in error_selectors(name).items():
        if any(sel in b or sel.hex().encode() in b for b in blobs):
            return err
    return None


_BYTES_LITERAL = re.compile(r"b'(?:[^'\\]|\\.)*'" + "|" + r'b"(?:[^"\\]|\\.)*"')


def _bytes_literals(text: str) -> list[bytes]:
    """eth-tester reports revert data as the repr of a bytes object inside its message."""
    out = []
    for lit in _BYTES_LITERAL.findall(text):
        try:
            out.append(ast.literal_eval(lit))
        except (ValueError, SyntaxError):
            continue
    return out
