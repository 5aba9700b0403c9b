"""An example module plugin for dffml-service-http: install it beside the server and the server
lists it under /list/modules and runs its functions. Nothing else is needed: the entry point in
the ``dffml_service_http.module`` group is how the server finds it, and its name (``text``) is
the plugin name clients use."""

from setuptools import setup

setup(
    name="dffml-service-http-example-text",
    version="1.0.0",
    description="Example module plugin: redact and count words in uploaded text files",
    python_requires=">=3.10",
    packages=["example_text"],
    # The server provides service.plugins.*; a plugin package does not depend on it at install
    # time so that it can be installed into any environment where the server runs.
    install_requires=[],
    entry_points={
        "dffml_service_http.module": [
            "text = example_text.module:TextModule",
        ],
    },
)
