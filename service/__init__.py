"""dffml-service-http: an aiohttp server that puts machine-learning plugins on HTTP."""

__version__ = "0.2.0"
