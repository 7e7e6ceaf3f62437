"""The encodings a secret can leak in, to put in tasks, and a check that finds any of them.

``leaks`` does not share code with the redaction it checks: it decodes what it is given
(percent-encoding, ``+``, HTML references, JSON/Python escapes, base64 at every alignment,
nested or mixed, three deep) and looks for the plain value.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import random
import re
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

# Characters httpx, browsers and quote() each encode differently, a 2-byte UTF-8 character
# and a '%' that is not an escape.
ODD = "p@ss w/rd+ü&=%Zq9"


def encoded(secret: str) -> dict[str, str]:
    """The forms of ``secret`` that URLs, forms, JSON, HTML and base64 give it."""
    raw = secret.encode()
    upper = quote(secret, safe="")
    forms = {
        "plain": secret,
        "quote": upper,
        "quote_lower_hex": re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), upper),
        "quote_plus": quote_plus(secret),
        "path_safe": quote(secret, safe="@/+&=%"),  # what httpx leaves in a query
        "double": quote(upper, safe=""),
        "json_ascii": json.dumps(secret),
        "json_in_json": json.dumps(json.dumps(secret)),
        "html": html.escape(secret),
        "html_numeric": "".join(f"&#{ord(c)};" for c in secret),
        "bytes_repr": repr(raw),
    }
    for i, prefix in enumerate((b"", b"u", b"us")):  # the three alignments in a longer string
        data = prefix + raw + b"!?"
        forms[f"b64_{i}"] = base64.b64encode(data).decode()
        forms[f"b64url_{i}"] = base64.urlsafe_b64encode(data).decode().rstrip("=")
    return forms


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(k) + _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _unescape(text: str) -> str:
    def one(m: re.Match[str]) -> str:
        body = m.group(1)
        if body[0] == "u":
            return chr(int(body[1:], 16))
        return {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}.get(body, body)

    text = re.sub(r"\\+(u[0-9a-fA-F]{4}|[\"'\\/nrtbf])", one, text)

    def run(m: re.Match[str]) -> str:
        data = bytes.fromhex(m.group().replace("\\", "").replace("x", ""))
        return data.decode("utf-8", "replace")

    return re.sub(r"(?:\\+x[0-9a-fA-F]{2})+", run, text)


def _decodings(text: str) -> set[str]:
    found = {text}
    for _ in range(3):
        for t in list(found):
            found |= {unquote(t), unquote_plus(t), html.unescape(t), _unescape(t)}
    return found


def _in_base64(text: str, raw: bytes) -> bool:
    for run in re.findall(r"[A-Za-z0-9+/_-]{8,}", text):
        std = run.replace("-", "+").replace("_", "/")
        for start in range(4):
            chunk = std[start:]
            chunk = chunk[: len(chunk) - len(chunk) % 4]
            try:
                if raw in base64.b64decode(chunk):
                    return True
            except (binascii.Error, ValueError):
                continue
    return False


def leaks(value: Any, secret: str) -> list[str]:
    """The strings in ``value`` (dict keys included) that give ``secret`` back when decoded."""
    raw = secret.encode()
    return [
        s for s in _strings(value) if any(secret in d for d in _decodings(s)) or _in_base64(s, raw)
    ]


def leaks_in_json_lines(text: str, secret: str) -> list[str]:
    """``leaks`` in CLI output: one JSON document, or one per line."""
    try:
        return leaks(json.loads(text), secret)
    except ValueError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        return leaks(docs, secret)


_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " @/+&=%?#;:,.!~*'\"<>()[]{}\\|^`$-_\nüé€ßж中😀"
)


def random_secret(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(6, 24)))


def _char_form(c: str, rng: random.Random) -> str:
    choice = rng.randrange(6)
    data = c.encode()
    if choice == 1:
        return "".join(f"%{b:02X}" for b in data)
    if choice == 2:
        return "".join(f"%{b:02x}" for b in data)
    if choice == 3:
        return f"&#{ord(c)};" if rng.random() < 0.5 else f"&#x{ord(c):X};"
    if choice == 4 and ord(c) < 0x10000:
        return f"\\u{ord(c):04x}"
    return c


def random_forms(secret: str, rng: random.Random) -> list[str]:
    """``secret`` with each character encoded its own way, and whole-value encodings."""
    mixed = ["".join(_char_form(c, rng) for c in secret) for _ in range(4)]
    prefix = bytes(rng.randrange(256) for _ in range(rng.randrange(3)))
    data = prefix + secret.encode() + bytes(rng.randrange(256) for _ in range(rng.randrange(3)))
    b64 = base64.b64encode(data).decode()
    return [*mixed, quote_plus(secret), json.dumps(secret), json.dumps(json.dumps(secret)),
            b64, b64.rstrip("="), base64.urlsafe_b64encode(data).decode().rstrip("=")]  # fmt: skip
