"""`/store`: the staff screen, one static page (`store.html`) over the store's JSON API.

The page holds no data and no key: it is served to anyone, and the store logs in inside it with
its id and store key, which the page keeps in sessionStorage and sends as a bearer token to
`/api/v1/stores/{store_id}/...` — the same calls, and the same 401/403, as a POS integration."""
from __future__ import annotations

from pathlib import Path

from werkzeug import Response

from hub.api.http import Call, Route

PAGE = Path(__file__).with_name("store.html")

# The page calls only its own origin; nothing is loaded from elsewhere (no CDN, no fonts, no frames).
CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def store_screen(call: Call) -> Response:
    return Response(PAGE.read_bytes(), content_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                             "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP})


ROUTES = [
    Route("GET", "/store", store_screen, "public",
          "The store staff screen (HTML; logs in with the store id and key inside the page)",
          responses={200: "the page"}),
]
