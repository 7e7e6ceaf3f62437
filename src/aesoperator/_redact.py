"""The one redaction of secret values, for everything that leaves a task.

Events, actions, pages, results, errors, LLM traces and every request to a model pass through
:class:`Redactor`. A value is found in every form a URL, a form, JSON, HTML or a log gives it,
each character independently:

* raw, or percent-encoded (its UTF-8 bytes, hex in either case, also ``%25``-double-encoded),
  ``+`` for a space;
* a backslash escape (JSON/JS/Python: ``\\u00fc``, ``\\ud83d\\ude00``, ``\\U0001f600``,
  ``\\xc3\\xbc``, ``\\"``, ``\\/``, ``\\n``; escaped backslashes of nested JSON too);
* an HTML character reference (``&#252;``, ``&#xFC;``, ``&uuml;``, ``&amp;``);

and as base64 of its UTF-8 bytes (standard or URL-safe alphabet, with or without padding,
``%2B``/``%2F`` too) at each of the three byte alignments it can have inside a longer base64
string, with the edge characters it shares with its neighbours. Dict keys are redacted like
values; a value of another type is redacted through ``str()``, the way it would be stored.

Values shorter than :data:`MIN_LENGTH` characters are not redacted (they would mangle
ordinary text), and base64 forms need :data:`MIN_BASE64_BYTES` bytes. Other transforms (hex,
hashes, a value cut in two) are not recognised: redaction stops accidents, not a task that
means to leak what it was given.

One regular expression is compiled per set of secrets (cached): a secret costs one pass over
each string, whatever its length.
"""

from __future__ import annotations

import functools
import html.entities
import re
from collections.abc import Iterable, Mapping
from typing import Any

MIN_LENGTH = 3
MIN_BASE64_BYTES = 6

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_ESCAPES = {'"': '"', "'": "'", "/": "/", "\b": "b", "\f": "f", "\n": "n",
            "\r": "r", "\t": "t"}  # fmt: skip
_NAMES = {**html.entities.codepoint2name, ord("'"): "apos"}


def _hex(number: int, width: int = 2) -> str:
    """``number`` in hex, each letter digit in either case."""
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in f"{number:0{width}x}")


def _char(c: str, backslashes: int) -> str:
    """Every form one character of a secret can take, as one group.

    A backslash is ``backslashes`` of them (raw 1, in JSON 2, in JSON in JSON 4): one count
    per pattern, as a free count would let a long run of backslashes split many ways.
    """
    cp = ord(c)
    data = c.encode("utf-8", "surrogatepass")
    forms = ["".join("%(?:25){0,3}" + _hex(b) for b in data)]
    if c == " ":
        forms.append(r"\+")
    esc = r"\\{1,7}"  # one backslash, or up to 7 where JSON is nested in JSON
    if cp < 0x10000:
        forms.append(esc + "u" + _hex(cp, 4))
    else:
        hi, lo = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
        forms += [f"{esc}u{_hex(hi, 4)}{esc}u{_hex(lo, 4)}", esc + "U" + _hex(cp, 8)]
    forms.append("".join(esc + "x" + _hex(b) for b in data))
    if c in _ESCAPES:
        forms.append(esc + re.escape(_ESCAPES[c]))
    forms += [f"&#0*{cp};", f"&#[xX]0*{_hex(cp, 1)};"]
    if cp in _NAMES:
        forms.append(f"&{_NAMES[cp]};")
    # Raw last: an encoded form starting with the same character ("&#38;" for "&") is
    # taken whole when it is there, not left behind after the raw one.
    forms.append(re.escape(c) * (backslashes if c == "\\" else 1))
    return "(?:" + "|".join(forms) + ")"


def _b64_char(values: set[int]) -> str:
    """One base64 character that may be any of ``values`` (both alphabets, ``%2B``/``%2F``)."""
    alts = []
    plain = "".join(_B64[v] for v in sorted(values) if v < 62)
    if plain:
        alts.append(f"[{plain}]" if len(plain) > 1 else plain)
    if 62 in values:
        alts += [r"\+", "-", "%2[bB]"]
    if 63 in values:
        alts += ["/", "_", "%2[fF]"]
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _base64(data: bytes) -> list[str]:
    """Patterns for ``data`` in base64 after 0, 1 or 2 bytes of anything.

    Each character covers 6 bits; one that also covers bits of the neighbours may be any
    value whose bits from ``data`` match, so the edges are matched (and hidden) too.
    """
    bits = "".join(f"{b:08b}" for b in data)
    patterns = []
    for offset in (0, 8, 16):
        end = offset + len(bits)
        chars = []
        for i in range(offset // 6, (end + 5) // 6):
            fixed = [(j, bits[6 * i + j - offset]) for j in range(6) if offset <= 6 * i + j < end]
            values = {v for v in range(64) if all(f"{v:06b}"[j] == b for j, b in fixed)}
            chars.append(_b64_char(values))
        patterns.append("".join(chars))
    return patterns


@functools.lru_cache(maxsize=32)
def _compile(secrets: tuple[tuple[str, str], ...]) -> tuple[re.Pattern[str], list[str]] | None:
    """One pattern for all ``(name, value)`` secrets; group ``s<i>`` is the i-th name."""
    usable = sorted((p for p in secrets if len(p[1]) >= MIN_LENGTH), key=lambda p: -len(p[1]))
    if not usable:
        return None
    names = sorted({n for n, _ in usable}, key=lambda n: -len(n))
    # Marks already in the text (from an earlier pass) are kept whole, never re-redacted.
    keep = "|".join(re.escape(n) for n in names)
    alts = [rf"(?P<keep>\[secret:(?:{keep})\]|\{{\{{secret:(?:{keep})\}}\}})"]
    for i, (_, value) in enumerate(usable):
        widths = (1, 2, 4) if "\\" in value else (1,)
        forms = ["".join(_char(c, w) for c in value) for w in widths]
        data = value.encode("utf-8", "surrogatepass")
        if len(data) >= MIN_BASE64_BYTES:
            forms += _base64(data)
        alts.append(f"(?P<s{i}>" + "|".join(forms) + ")")
    return re.compile("|".join(alts)), [n for n, _ in usable]


class Redactor:
    """Replaces every secret value, in any of its forms, with ``mark`` (``{}`` is its name)."""

    def __init__(
        self, secrets: Mapping[str, str] | Iterable[tuple[str, str]], mark: str = "[secret:{}]"
    ) -> None:
        pairs = secrets.items() if isinstance(secrets, Mapping) else secrets
        self.pairs = tuple(sorted(set(pairs)))
        self.names = sorted({n for n, _ in self.pairs})
        self._pattern: re.Pattern[str] | None = None
        self._marks: dict[str, str] = {}
        compiled = _compile(self.pairs)
        if compiled is not None:
            self._pattern = compiled[0]
            self._marks = {f"s{i}": mark.format(n) for i, n in enumerate(compiled[1])}

    @property
    def active(self) -> bool:
        """Whether there is anything to redact (no secret long enough: nothing is)."""
        return self._pattern is not None

    def _sub(self, match: re.Match[str]) -> str:
        group = match.lastgroup
        return match.group(0) if group == "keep" or group is None else self._marks[group]

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(self._sub, value)

    def value(self, value: Any) -> Any:
        """``value`` with every string redacted, dict keys included (tuples become lists)."""
        if self._pattern is None or value is None or isinstance(value, bool):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        # Numbers and other objects are stored as their str(): redacted in that form.
        try:
            shown = str(value)
        except Exception:
            return value
        cleaned = self.text(shown)
        return value if cleaned == shown else cleaned
