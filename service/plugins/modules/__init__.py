"""Built-in modules, registered through the ``dffml_service_http.module`` entry points."""
