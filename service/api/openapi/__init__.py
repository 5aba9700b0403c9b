"""The OpenAPI 3.1 contract, generated from the route table (see docs/openapi.md)."""

from service.api.openapi.declare import (
    ERROR_SCHEMA,
    OK_SCHEMA,
    Body,
    Operation,
    Response,
    Variant,
    document,
    operation,
)

__all__ = [
    "ERROR_SCHEMA",
    "OK_SCHEMA",
    "Body",
    "Operation",
    "Response",
    "Variant",
    "document",
    "operation",
]
