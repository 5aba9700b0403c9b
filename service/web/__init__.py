"""What the server shows people: the dashboard, the JavaScript client and the API docs pages.

The files ship inside the package (setup.py's package_data); the handlers here serve them.
"""

from pathlib import Path

ROOT = Path(__file__).parent
# api.js, served at /api.js (-js)
JS_CLIENT = ROOT / "static" / "api.js"
# Swagger UI and ReDoc, vendored (scripts/vendor-docs-assets), served under /docs/assets/
DOCS_ASSETS = ROOT / "static" / "docs"
# The dashboard's pages, scripts and styles, served under /ui/
DASHBOARD = ROOT / "ui"
