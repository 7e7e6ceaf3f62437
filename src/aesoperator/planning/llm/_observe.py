"""What the model sees of a page: URL, title, indexed interactive elements, visible text.

Elements are found in the DOM in one script run (no accessibility-tree round trips): role and
accessible name follow the ARIA rules that matter in practice (explicit role, implicit role of
the tag, ``aria-label``, ``aria-labelledby``, ``<label>``, ``placeholder``, ``alt``, text).
Each element gets a ``data-aesop-ref`` attribute, so acting on ``[12]`` needs no second search,
and a locator (role + name, text, CSS path, position) kept in the trace for replay.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page

CHARS_PER_TOKEN = 4  # rough count for budgets of text we send; models bill their own count

_SCRIPT = r"""
(maxText) => {
  const INTERACTIVE = 'a[href],button,input,select,textarea,summary,[role=button],[role=link],' +
    '[role=checkbox],[role=radio],[role=tab],[role=menuitem],[role=option],[role=switch],' +
    '[role=combobox],[role=textbox],[role=searchbox],[onclick],[contenteditable=true],[tabindex]';
  const clean = (s) => (s || '').replace(/\s+/g, ' ').trim();
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return false;
    const st = getComputedStyle(el);
    return st.visibility !== 'hidden' && st.display !== 'none' && st.opacity !== '0';
  };
  const implicitRole = (el) => {
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (tag === 'a') return 'link';
    if (tag === 'button' || tag === 'summary') return 'button';
    if (tag === 'select') return el.multiple ? 'listbox' : 'combobox';
    if (tag === 'textarea') return 'textbox';
    if (tag === 'input') {
      if (['button', 'submit', 'reset', 'image'].includes(type)) return 'button';
      if (type === 'checkbox') return 'checkbox';
      if (type === 'radio') return 'radio';
      if (type === 'range') return 'slider';
      if (type === 'number') return 'spinbutton';
      if (type === 'search') return 'searchbox';
      return 'textbox';
    }
    return 'generic';
  };
  const nameOf = (el) => {
    const aria = el.getAttribute('aria-label');
    if (aria) return clean(aria);
    const by = el.getAttribute('aria-labelledby');
    if (by) {
      const t = by.split(/\s+/).map((id) => document.getElementById(id))
        .filter(Boolean).map((n) => n.textContent).join(' ');
      if (clean(t)) return clean(t);
    }
    if (el.labels && el.labels.length)
      return clean(Array.from(el.labels).map((l) => l.textContent).join(' '));
    const tag = el.tagName.toLowerCase();
    if (tag === 'input') {
      const type = (el.getAttribute('type') || '').toLowerCase();
      if (['button', 'submit', 'reset'].includes(type)) return clean(el.value) || type;
      if (type === 'image') return clean(el.alt);
    }
    const ph = el.getAttribute('placeholder');
    if (ph) return clean(ph);
    if (tag !== 'select' && tag !== 'textarea') {
      const t = clean(el.innerText || el.textContent);
      if (t) return t.slice(0, 80);
      const img = el.querySelector('img[alt]');
      if (img) return clean(img.alt);
    }
    return clean(el.getAttribute('title') || el.getAttribute('name') || '');
  };
  const cssPath = (el) => {
    const parts = [];
    for (let n = el; n && n.nodeType === 1 && n !== document.body; n = n.parentElement) {
      if (n.id && /^[A-Za-z][\w-]*$/.test(n.id)) { parts.unshift('#' + n.id); break; }
      let i = 1;
      for (let s = n.previousElementSibling; s; s = s.previousElementSibling)
        if (s.tagName === n.tagName) i++;
      parts.unshift(n.tagName.toLowerCase() + ':nth-of-type(' + i + ')');
    }
    return parts.join(' > ');
  };
  document.querySelectorAll('[data-aesop-ref]').forEach((n) => n.removeAttribute('data-aesop-ref'));
  const out = [];
  let ref = 0;
  for (const el of document.querySelectorAll(INTERACTIVE)) {
    if (!visible(el)) continue;
    if (el.closest('[aria-hidden=true]')) continue;
    const tag = el.tagName.toLowerCase();
    const type = (el.getAttribute('type') || '').toLowerCase();
    if (tag === 'input' && type === 'hidden') continue;
    ref += 1;
    el.setAttribute('data-aesop-ref', String(ref));
    const role = el.getAttribute('role') || implicitRole(el);
    const item = {ref, role, name: nameOf(el), tag, css: cssPath(el)};
    const r = el.getBoundingClientRect();
    item.pos = [Math.round(r.x + r.width / 2 + scrollX), Math.round(r.y + r.height / 2 + scrollY)];
    if (tag === 'input' || tag === 'textarea') {
      if (type === 'checkbox' || type === 'radio') item.checked = el.checked;
      else if (type === 'password') item.value = el.value ? '<filled>' : '';
      else if (!['button', 'submit', 'reset', 'image'].includes(type)) item.value = el.value;
      const plain = ['text', 'checkbox', 'radio', 'submit', 'button'];
      if (type && !plain.includes(type)) item.type = type;
    }
    if (tag === 'select') {
      const o = el.options[el.selectedIndex];
      item.value = o ? clean(o.text) : '';
      item.options = Array.from(el.options).map((o) => clean(o.text)).slice(0, 30);
    }
    if (el.disabled) item.disabled = true;
    if (el.required) item.required = true;
    if (el.validationMessage && el.willValidate && !el.checkValidity())
      item.invalid = clean(el.validationMessage);
    if (tag === 'a') item.href = el.getAttribute('href');
    const exp = el.getAttribute('aria-expanded');
    if (exp) item.expanded = exp === 'true';
    out.push(item);
  }
  // Lines kept (lists, tables and messages stay readable); runs of blanks collapsed.
  const raw = document.body ? document.body.innerText : '';
  const text = raw.replace(/[ \t\u00a0]+/g, ' ').replace(/ ?\n[\s]*/g, '\n').trim()
    .slice(0, maxText);
  return {url: location.href, title: document.title, elements: out, text,
          scroll: [Math.round(scrollY), Math.round(document.documentElement.scrollHeight),
                   innerHeight]};
}
"""


@dataclass
class Observation:
    url: str
    title: str
    elements: list[dict[str, Any]]
    text: str
    scroll: list[int] = field(default_factory=list)
    screenshot: bytes | None = None

    def element(self, ref: int) -> dict[str, Any] | None:
        for el in self.elements:
            if el["ref"] == ref:
                return el
        return None

    @property
    def state_key(self) -> str:
        """A fingerprint of what the page shows: same key, same state (for loop detection)."""
        view = [(e["role"], e["name"], e.get("value"), e.get("checked")) for e in self.elements]
        blob = json.dumps([self.url, self.title, view, self.text], default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def render(self, max_tokens: int) -> str:
        """The compact text form the model reads, capped at about ``max_tokens`` tokens."""
        lines = []
        budget = max_tokens * CHARS_PER_TOKEN
        head = f"URL: {self.url}\nTitle: {self.title}\n"
        if self.scroll:
            y, height, view = self.scroll
            head += f"Scroll: {y}/{max(0, height - view)} px\n"
        used = len(head)
        shown = 0
        for el in self.elements:
            line = _element_line(el)
            if used + len(line) > budget * 0.6:
                break
            lines.append(line)
            used += len(line) + 1
            shown += 1
        if shown < len(self.elements):
            lines.append(f"... {len(self.elements) - shown} more elements (scroll to see them)")
        left = max(200, budget - used - 200)
        text = self.text if len(self.text) <= left else self.text[:left] + " ...(truncated)"
        return (
            head
            + "Interactive elements:\n"
            + ("\n".join(lines) or "(none)")
            + "\nVisible text:\n"
            + text
        )


def _element_line(el: dict[str, Any]) -> str:
    parts = [f"[{el['ref']}] {el['role']} {json.dumps(el['name'], ensure_ascii=False)}"]
    if "type" in el:
        parts.append(f"type={el['type']}")
    if "value" in el:
        parts.append(f"value={json.dumps(el['value'], ensure_ascii=False)[:80]}")
    if "options" in el:
        parts.append("options=" + json.dumps(el["options"], ensure_ascii=False)[:200])
    for flag in ("checked", "disabled", "required", "expanded"):
        if el.get(flag) is True:
            parts.append(flag)
    if "invalid" in el:
        parts.append(f"invalid={json.dumps(el['invalid'])}")
    if el.get("href") and not el["name"]:
        parts.append(f"-> {el['href'][:100]}")  # a link without a name: its target says most
    return " ".join(parts)


async def observe(page: Page, *, max_text_chars: int = 20_000) -> Observation:
    """Read the page's state in one script run."""
    try:
        data = await page.evaluate(_SCRIPT, max_text_chars)
    except Exception:
        # A navigation destroyed the context mid-read: wait for the new document once.
        await page.wait_for_load_state("domcontentloaded")
        data = await page.evaluate(_SCRIPT, max_text_chars)
    return Observation(
        url=str(data["url"]),
        title=str(data["title"]),
        elements=list(data["elements"]),
        text=str(data["text"]),
        scroll=list(data.get("scroll") or []),
    )


def tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1
