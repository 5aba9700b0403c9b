"""Built-in sources, registered through the ``dffml_service_http.source`` entry points."""
