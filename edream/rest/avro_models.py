"""Pydantic models generated from the Avro contracts, so the REST API's OpenAPI document and its request validation
follow ``avro/*.avsc`` without a second copy of every field.

Avro ``long``/``int`` become ``int`` (``timestamp-millis``: UTC epoch ms), ``double``/``float`` a finite ``float``,
enums a ``Literal`` of their symbols, ``["null", T]`` an optional ``T`` (default ``None``), arrays ``list``, maps
``dict``, records nested models; field docs become descriptions. ``int`` fields are bounded to 32 bits and ``long``
fields to 64 bits, so an out-of-range number is refused naming its field instead of failing in the Avro writer.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from edream.avro_schemas import contract

_INT32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
_INT64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
_FLOAT = Annotated[float, Field(allow_inf_nan=False)]
_PRIMITIVES: dict[str, Any] = {
    "string": str,
    "bytes": str,
    "int": _INT32,
    "long": _INT64,
    "double": _FLOAT,
    "float": _FLOAT,
    "boolean": bool,
}


class AvroModel(BaseModel):
    """Base of every generated model: unknown fields are refused (a typo is an error, not a silent default)."""

    model_config = ConfigDict(extra="forbid")


class _Builder:
    """Builds one contract's models; named types (records, enums) are built once and may be referenced by name."""

    def __init__(self) -> None:
        self.named: dict[str, Any] = {}

    def annotation(self, avro_type: Any) -> Any:
        if isinstance(avro_type, list):
            non_null = [t for t in avro_type if t != "null"]
            inner: Any = (
                self.annotation(non_null[0]) if len(non_null) == 1 else Any  # general unions: any JSON
            )
            return inner | None if "null" in avro_type else inner
        if isinstance(avro_type, str):
            if avro_type in _PRIMITIVES:
                return _PRIMITIVES[avro_type]
            return self.named[avro_type.rsplit(".", 1)[-1]]
        kind = avro_type["type"]
        if kind == "record":
            return self.record(avro_type)
        if kind == "enum":
            enum = Literal[tuple(avro_type["symbols"])]  # type: ignore[valid-type]
            self.named[avro_type["name"]] = enum
            return enum
        if kind == "array":
            return list[self.annotation(avro_type["items"])]  # type: ignore[misc]
        if kind == "map":
            return dict[str, self.annotation(avro_type["values"])]  # type: ignore[misc]
        if kind == "fixed":
            return str
        return self.annotation(kind)  # {"type": "long", "logicalType": ...}

    def record(self, schema: dict[str, Any]) -> type[AvroModel]:
        fields: dict[str, Any] = {}
        for f in schema["fields"]:
            default, doc = f.get("default", ...), f.get("doc")
            if isinstance(default, (list, dict)):
                info = Field(default_factory=partial(copy.deepcopy, default), description=doc)
            else:
                info = Field(default, description=doc)
            fields[f["name"]] = (self.annotation(f["type"]), info)
        model = create_model(schema["name"], __base__=AvroModel, __doc__=schema.get("doc"), **fields)
        self.named[schema["name"]] = model
        return model


_MODELS: dict[str, type[AvroModel]] = {}


def avro_model(schema_name: str) -> type[AvroModel]:
    """The pydantic model of the Avro contract ``avro/<schema_name>.avsc`` (cached)."""
    if schema_name not in _MODELS:
        _MODELS[schema_name] = _Builder().record(contract(schema_name).raw)
    return _MODELS[schema_name]
