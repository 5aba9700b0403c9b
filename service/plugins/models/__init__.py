"""Built-in models, registered through the ``dffml_service_http.model`` entry points."""
