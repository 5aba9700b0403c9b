"""JSON Schemas (2020-12, as OpenAPI 3.1 uses) for the wire shapes and for plugin configs.

Plugin configs are read from the same declaration that drives ``/list``
(:func:`service.sdk.config.fields_of`), so a new config field appears in the spec as it
appears in the listing. The schemas describe what a well-behaved client sends; the server also
accepts a few older spellings (numbers as strings, a single item for a list, field aliases)
that the descriptions mention but the schemas leave out.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Literal

from service.api.openapi.declare import Body, Schema, Variant
from service.plugins.registry import Registry
from service.sdk.base import KINDS, Kind
from service.sdk.config import FieldSpec, _is_list, _jsonable, _strip_optional, fields_of
from service.sdk.feature import DTYPES, Feature

# A component schema reference.


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


COMPONENTS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "description": "Every refusal, whatever the status: a human-readable message.",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "Ok": {
        "type": "object",
        "description": "Done: DFFML's acknowledgement, an error of null.",
        "properties": {"error": {"type": "null"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "Record": {
        "type": "object",
        "description": "A record; one that does not exist is just its key.",
        "properties": {
            "key": {"type": "string"},
            "features": {"type": "object"},
            "extra": {"type": "object"},
            "prediction": {"type": "object"},
            "last_updated": {"type": "string"},
        },
        "required": ["key"],
    },
    "RecordIn": {
        "type": "object",
        "description": "A record as a client sends it; the key in the URL wins over one here.",
        "properties": {
            "key": {"type": "string"},
            "features": {"type": "object"},
            "extra": {"type": "object"},
        },
    },
    "RecordPage": {
        "type": "object",
        "description": "One chunk of records and the iterkey of the next (null: no more).",
        "properties": {
            "iterkey": {"type": ["string", "null"]},
            "records": {"type": "object", "additionalProperties": ref("Record")},
        },
        "required": ["iterkey", "records"],
    },
    "SourceLabels": {
        "type": "array",
        "description": "Labels of open source contexts whose records are used, in order.",
        "items": {"type": "string"},
        "minItems": 1,
    },
    "Accuracy": {
        "type": "object",
        "properties": {"accuracy": {"type": ["number", "null"]}},
        "required": ["accuracy"],
    },
    "Feature": {
        "description": 'A feature: "NAME[:DTYPE[:LENGTH]]" or an object.',
        "anyOf": [
            {
                "type": "string",
                "pattern": "^[^:]+(:(" + "|".join(DTYPES) + ")(:[1-9][0-9]{0,5})?)?$",
            },
            {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "dtype": {"enum": list(DTYPES)},
                    "length": {"type": "integer", "minimum": 1, "maximum": 999999},
                },
                "required": ["name"],
                "additionalProperties": False,
            },
        ],
    },
}


def field_schema(spec: FieldSpec) -> Schema:
    """The schema of one config field, with its help and default."""
    schema = _annotation_schema(spec.annotation)
    if spec.help:
        schema = {**schema, "description": spec.help}
    if spec.aliases:
        schema["description"] = (
            schema.get("description", "") + f" (also accepted as: {', '.join(spec.aliases)})"
        ).strip()
    if not spec.required:
        schema["default"] = _jsonable(spec.default)
    return schema


def _annotation_schema(annotation: Any) -> Schema:
    inner = _strip_optional(annotation)
    if inner is not annotation:
        return {"anyOf": [_annotation_schema(inner), {"type": "null"}]}
    if annotation is Any:
        return {}
    if annotation is str:
        return {"type": "string"}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is float:
        return {"type": "number"}
    if annotation is Path:
        return {"type": "string", "minLength": 1, "pattern": "^[^\\u0000]+$"}
    if annotation is Feature:
        return ref("Feature")
    if typing.get_origin(annotation) is Literal:
        return {"enum": list(typing.get_args(annotation))}
    if _is_list(annotation):
        args = typing.get_args(annotation)
        return {"type": "array", "items": _annotation_schema(args[0]) if args else {}}
    if annotation is dict or typing.get_origin(annotation) is dict:
        return {"type": "object"}
    raise TypeError(f"no JSON schema for config annotation {annotation!r}")


def config_schema(config_cls: type) -> Schema:
    """A config in the flat form: ``{"filename": "a.csv", "readwrite": true}``."""
    specs = fields_of(config_cls)
    schema: Schema = {
        "type": "object",
        "properties": {spec.name: field_schema(spec) for spec in specs},
        "additionalProperties": False,
    }
    required = [spec.name for spec in specs if spec.required]
    if required:
        schema["required"] = required
    return schema


def nested_config_schema(kind: Kind, config_cls: type) -> Schema:
    """The same config in DFFML's nested form: ``{kind: {"plugin": null, "config": {field:
    {"plugin": [value], "config": {}}}}}``."""
    specs = fields_of(config_cls)
    fields: dict[str, Schema] = {}
    for spec in specs:
        value = field_schema(spec)
        if not spec.is_list:
            value = {
                "anyOf": [value, {"type": "array", "items": value, "minItems": 1, "maxItems": 1}]
            }
        fields[spec.name] = {
            "type": "object",
            "properties": {"plugin": value, "config": {"type": "object", "maxProperties": 0}},
            "required": ["plugin"],
            "additionalProperties": False,
        }
    config: Schema = {"type": "object", "properties": fields, "additionalProperties": False}
    required = [spec.name for spec in specs if spec.required]
    if required:
        config["required"] = required
    return {
        "type": "object",
        "properties": {
            kind: {
                "type": "object",
                "properties": {"plugin": {"type": "null"}, "config": config},
                "required": ["config"],
            }
        },
        "required": [kind],
        "additionalProperties": False,
    }


def plugin_components(registry: Registry) -> dict[str, Schema]:
    """``{kind}.{plugin}`` and ``{kind}.{plugin}.nested`` for every available plugin."""
    out: dict[str, Schema] = {}
    for kind in KINDS:
        for name, cls in _available(registry, kind):
            out[f"{kind}.{name}"] = {
                "title": f"{kind} {name} config",
                "description": (cls.__doc__ or "").strip().split("\n")[0],
                **config_schema(cls.CONFIG),
            }
            out[f"{kind}.{name}.nested"] = {
                "title": f"{kind} {name} config, DFFML's nested form",
                **nested_config_schema(kind, cls.CONFIG),
            }
    return out


def _available(registry: Registry, kind: Kind) -> list[tuple[str, Any]]:
    found = []
    for name in registry.names(kind):
        try:
            found.append((name, registry.get(kind, name)))
        except Exception:  # unavailable: listed with its reason, nothing to configure
            continue
    return found


def configure_body(registry: Registry) -> Body:
    """Any installed plugin's config, flat or nested (the path names which plugin)."""
    choices = [ref(name) for name in sorted(plugin_components(registry))]
    return Body.json(
        {"anyOf": choices} if choices else {"type": "object"},
        required=False,
        description="The plugin's config, flat or in DFFML's nested form; none: all defaults.",
    )


def configure_variants(registry: Registry) -> list[Variant]:
    """``/configure/{kind}/{plugin}/{label}`` once per installed plugin, with its own body."""
    variants = []
    for kind in KINDS:
        for name, cls in _available(registry, kind):
            variants.append(
                Variant(
                    values={"kind": kind, "plugin": name},
                    summary=f"Configure {kind} plugin {name} under a label",
                    description=(cls.__doc__ or "").strip() or None,
                    body=Body.json(
                        {"anyOf": [ref(f"{kind}.{name}"), ref(f"{kind}.{name}.nested")]},
                        required=False,
                        description="Config, flat or nested; none: all defaults.",
                    ),
                )
            )
    return variants
