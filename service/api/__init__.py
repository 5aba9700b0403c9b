"""The HTTP API beside :mod:`service.routes`: handlers (thin: parse, call, serialise),
middlewares, app keys, body and parameter parsing, async answers, and the OpenAPI document."""
