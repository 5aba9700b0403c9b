"""Example module plugin for dffml-service-http (see ../README.md)."""
