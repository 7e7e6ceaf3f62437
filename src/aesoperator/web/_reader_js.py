"""The script every reading tab runs before a page's own: ``WebSocket`` answered by us.

Chromium's Fetch domain does not see WebSockets, and Chromium has no network of its own, so a
page's ``new WebSocket`` is replaced (in every frame, before the page's scripts run) by one that
asks the session through a binding: ``open`` (the session checks the URL like any request and
connects from Python to the pinned address), ``send`` and ``close``; the session answers by
calling ``__aesopWsIn(id, what, data)`` in the same frame. Binary messages travel as base64.
"""

from pathlib import Path

BINDING = "__aesopWs"

SHIM = (Path(__file__).parent / "_websocket_shim.js").read_text(encoding="utf-8")


# The document's HTML as Playwright's ``page.content()`` gives it (doctype, then the root
# element), with the URL it is at, read together.
CONTENT = r"""
(() => {
  let html = '';
  if (document.doctype) html = new XMLSerializer().serializeToString(document.doctype);
  if (document.documentElement) html += document.documentElement.outerHTML;
  return [location.href, html];
})()
"""
