"""Plugin configuration: one dataclass declaration drives listing, validation and preloads.

A plugin declares ``CONFIG``, a dataclass whose fields carry their help text in metadata (use
:func:`field`). From it this module derives the ``/list`` schema, validates and coerces
configuration arriving as JSON (HTTP, YAML) or as strings (CLI), and reports problems with
messages that name the plugin, the field and the expected type.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import orjson

from service.kernel.errors import BadRequest, ConfigError
from service.sdk.feature import Feature

MISSING: Any = dataclasses.MISSING

PathResolver = Callable[[str], Path]


def field(
    help: str,
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    aliases: tuple[str, ...] = (),
) -> Any:
    """A config field with help text; omit both defaults for a required field.

    ``aliases`` are other names clients may send for the field (older spellings).
    """
    return dataclasses.field(
        default=default,
        default_factory=default_factory,
        metadata={"help": help, "aliases": aliases},
    )


@dataclasses.dataclass(frozen=True)
class EmptyConfig:
    """The config of a plugin without options."""


@dataclasses.dataclass(frozen=True)
class FieldSpec:
    name: str
    annotation: Any
    help: str
    required: bool
    default: Any
    aliases: tuple[str, ...] = ()

    @property
    def type_name(self) -> str:
        return type_name(self.annotation)

    @property
    def is_list(self) -> bool:
        return _is_list(_strip_optional(self.annotation))

    @property
    def nullable(self) -> bool:
        return _is_optional(self.annotation)

    @property
    def base_type_name(self) -> str:
        """The type without its ``or null``: ``str`` for ``str | None``."""
        return type_name(_strip_optional(self.annotation))

    def describe(self) -> dict[str, Any]:
        """The ``plugin`` part of this field's entry in ``/list``."""
        info: dict[str, Any] = {"type": self.type_name}
        inner = _strip_optional(self.annotation)
        if typing.get_origin(inner) is Literal:
            info["type"] = "enum"
            info["choices"] = list(typing.get_args(inner))
        if inner is bool:
            info["action"] = "store_true"
        if self.required:
            info["required"] = True
        else:
            info["default"] = _jsonable(self.default)
        if self.help:
            info["help"] = self.help
        if self.aliases:
            info["aliases"] = list(self.aliases)
        return info


@functools.cache
def fields_of(config_cls: type) -> tuple[FieldSpec, ...]:
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"{config_cls!r} is not a dataclass")
    hints = typing.get_type_hints(config_cls)
    specs = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        if f.default is not MISSING:
            required, default = False, f.default
        elif callable(f.default_factory):
            required, default = False, f.default_factory()
        else:
            required, default = True, None
        specs.append(
            FieldSpec(
                name=f.name,
                annotation=hints[f.name],
                help=str(f.metadata.get("help", "")),
                required=required,
                default=default,
                aliases=tuple(f.metadata.get("aliases", ())),
            )
        )
    return tuple(specs)


def describe(config_cls: type) -> dict[str, Any]:
    """``{field: {"plugin": {...}, "config": {}}}`` as the DFFML listing nests it."""
    return {spec.name: {"plugin": spec.describe(), "config": {}} for spec in fields_of(config_cls)}


class Where:
    """Names a configuration in error messages: ``CSVSource`` … ``source.mydataset``."""

    def __init__(self, owner: str, kind: str, label: str, *, noun: str = "config field") -> None:
        self.owner = owner
        self.dotted = f"{kind}.{label}"
        # What a field is called in messages: module functions call theirs "option".
        self.noun = noun


def unwrap_nested(kind: str, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Accept DFFML's nested config body as well as a flat one.

    Nested: ``{"source": {"plugin": null, "config": {"filename": {"plugin": ["a.csv"],
    "config": {}}}}}``. Flat: ``{"filename": "a.csv"}``. Returns the flat values and whether
    they came nested (nested values are argument lists, unwrapped for scalar fields).
    """
    outer = body.get(kind) if len(body) == 1 else None
    if not (isinstance(outer, dict) and isinstance(outer.get("config"), dict)):
        return dict(body), False
    flat: dict[str, Any] = {}
    for name, entry in outer["config"].items():
        if isinstance(entry, dict) and "plugin" in entry:
            if entry.get("config"):
                raise ConfigError(f"Nested config under field '{name}' is not supported")
            flat[name] = entry["plugin"]
        else:
            flat[name] = entry
    return flat, True


def build(
    config_cls: type,
    values: Mapping[str, Any],
    *,
    where: Where,
    resolve_path: PathResolver,
    from_cli: bool = False,
    nested: bool = False,
) -> Any:
    """Validate ``values`` against ``config_cls`` and return an instance of it.

    ``from_cli``: each value is the list of strings that followed the option.
    ``nested``: values came from DFFML's nested form, where scalars arrive as one-item lists.
    """
    specs = {spec.name: spec for spec in fields_of(config_cls)}
    values = _rename_aliases(values, specs.values(), where)
    # A missing field is reported before an unknown one, as DFFML does: clients match
    # "missing.*filename" on a config that also misspells another field.
    for name, spec in specs.items():
        if spec.required and name not in values:
            raise ConfigError(f"{where.owner} missing '{name}' from {where.dotted}")
    unknown = sorted(set(values) - set(specs))
    if unknown:
        known = ", ".join(specs) or "none"
        raise ConfigError(
            f"{where.owner} has no {where.noun} '{unknown[0]}' in {where.dotted} (fields: {known})"
        )
    kwargs: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in values:
            continue
        raw = values[name]
        if (from_cli or nested) and not spec.is_list:
            raw = _single(raw, spec, where, from_cli)
        kwargs[name] = _coerce(raw, spec.annotation, spec, where, resolve_path, from_cli)
    try:
        return config_cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where.owner} config {where.dotted}: {exc}") from None
    except ConfigError:
        raise
    except BadRequest as exc:  # a check in __post_init__ reusing a validator that raises these
        raise ConfigError(f"{where.owner} config {where.dotted}: {exc.message}") from None


def _rename_aliases(
    values: Mapping[str, Any], specs: Iterable[FieldSpec], where: Where
) -> Mapping[str, Any]:
    renamed = dict(values)
    for spec in specs:
        for alias in spec.aliases:
            if alias not in renamed:
                continue
            if spec.name in renamed:
                raise ConfigError(
                    f"{where.owner} got both '{spec.name}' and its alias '{alias}' in "
                    f"{where.dotted}"
                )
            renamed[spec.name] = renamed.pop(alias)
    return renamed


def _single(raw: Any, spec: FieldSpec, where: Where, from_cli: bool) -> Any:
    if not isinstance(raw, list):
        return raw
    if len(raw) == 1:
        return raw[0]
    if not raw and from_cli and _strip_optional(spec.annotation) is bool:
        return True  # a bare flag: -source-s1-readwrite
    raise ConfigError(
        f"{where.owner} '{spec.name}' of {where.dotted} takes one value, got {len(raw)}"
    )


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(
    raw: Any,
    annotation: Any,
    spec: FieldSpec,
    where: Where,
    resolve_path: PathResolver,
    from_cli: bool,
) -> Any:
    def fail() -> ConfigError:
        shown = orjson.dumps(raw).decode() if _is_json(raw) else repr(raw)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return ConfigError(
            f"{where.owner} '{spec.name}' of {where.dotted} must be {type_name(annotation)},"
            f" got {shown}"
        )

    origin = typing.get_origin(annotation)
    if _is_optional(annotation):
        if raw is None or (from_cli and raw in ("", "none", "None", "null")):
            return None
        return _coerce(raw, _strip_optional(annotation), spec, where, resolve_path, from_cli)
    if annotation is Any:
        return raw
    if annotation is str:
        if isinstance(raw, str):
            return raw
        raise fail()
    if annotation is bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise fail()
    if annotation is int:
        if isinstance(raw, bool):
            raise fail()
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                raise fail() from None
        raise fail()
    if annotation is float:
        if isinstance(raw, bool):
            raise fail()
        if isinstance(raw, (int, float)):
            return float(raw)
        if isinstance(raw, str):
            try:
                value = float(raw.strip())
            except ValueError:
                raise fail() from None
            if math.isfinite(value):
                return value
        raise fail()
    if annotation is Path:
        if isinstance(raw, str) and raw and "\x00" not in raw:
            return resolve_path(raw)
        raise fail()
    if annotation is Feature:
        if isinstance(raw, list) and len(raw) == 1:
            raw = raw[0]  # DFFML clients send a single feature as a one-item list
        try:
            return Feature.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{where.owner} '{spec.name}' of {where.dotted}: {exc}") from None
    if origin is Literal:
        for choice in typing.get_args(annotation):
            if raw == choice or (isinstance(raw, str) and str(choice) == raw):
                return choice
        choices = ", ".join(repr(c) for c in typing.get_args(annotation))
        raise ConfigError(
            f"{where.owner} '{spec.name}' of {where.dotted} must be one of {choices}, got {raw!r}"
        )
    if _is_list(annotation):
        (item,) = typing.get_args(annotation) or (Any,)
        if not isinstance(raw, list):
            raw = [raw]
        return [_coerce(v, item, spec, where, resolve_path, from_cli) for v in raw]
    if origin is dict or annotation is dict:
        if from_cli and isinstance(raw, str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise fail() from None
        if isinstance(raw, dict):
            return raw
        raise fail()
    raise TypeError(f"unsupported config annotation {annotation!r} on {spec.name}")


def type_name(annotation: Any) -> str:
    if _is_optional(annotation):
        return f"{type_name(_strip_optional(annotation))} or null"
    if annotation is Path:
        return "path"
    if annotation is Feature:
        return "Feature"
    if annotation is Any:
        return "any"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(annotation))
    if _is_list(annotation):
        args = typing.get_args(annotation)
        return f"List[{type_name(args[0])}]" if args else "List"
    if origin is dict or annotation is dict:
        return "object"
    return getattr(annotation, "__name__", str(annotation))


def _is_list(annotation: Any) -> bool:
    return annotation is list or typing.get_origin(annotation) is list


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(annotation)
    return False


def _strip_optional(annotation: Any) -> Any:
    if not _is_optional(annotation):
        return annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007


def _is_json(value: Any) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Feature):
        return value.spec()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if _is_json(value) else str(value)
