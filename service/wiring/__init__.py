"""How each capability joins the app: a module per capability, each with ``install(app)``.

service/app.py builds the middlewares, then calls them in order (``CAPABILITIES``). A module
here may import from every layer: wiring is composition, like app.py and cli.py.
"""
