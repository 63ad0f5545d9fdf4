"""The public HTTP API: a WSGI application (werkzeug) over the hub core.

`build_api(ctx, deps)` in app.py is the entry; one module per audience holds its routes."""
