"""HTTP handlers, one module per resource. Each parses the request, calls the core, serialises."""
