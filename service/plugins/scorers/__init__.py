"""Built-in scorers, registered through the ``dffml_service_http.scorer`` entry points."""
