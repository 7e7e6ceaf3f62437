"""The browser tools the model may call, their JSON schemas, and how each one acts on a page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import PolicyViolation
from ...models import ToolSpec

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

    from ._browser import Tab
    from ._observe import Observation
    from ._secrets import Redactor


def _obj(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


_REF = {"type": "integer", "description": "the [ref] number of the element in the observation"}

BROWSER_TOOLS = [
    ToolSpec("navigate", "Open a URL in the browser.", _obj({"url": {"type": "string"}}, ["url"])),
    ToolSpec("click", "Click an element.", _obj({"ref": _REF}, ["ref"])),
    ToolSpec(
        "type",
        "Replace the text of an input with `text`. Write secrets as {{secret:NAME}}; "
        "set submit=true to press Enter afterwards.",
        _obj(
            {"ref": _REF, "text": {"type": "string"}, "submit": {"type": "boolean"}},
            ["ref", "text"],
        ),
    ),
    ToolSpec(
        "select",
        "Choose an option of a <select> by its visible text.",
        _obj({"ref": _REF, "option": {"type": "string"}}, ["ref", "option"]),
    ),
    ToolSpec(
        "check",
        "Tick (checked=true) or untick a checkbox or radio button.",
        _obj({"ref": _REF, "checked": {"type": "boolean"}}, ["ref"]),
    ),
    ToolSpec(
        "press",
        "Press a key (Enter, Tab, Escape, ArrowDown...), on an element if ref is given.",
        _obj({"key": {"type": "string"}, "ref": _REF}, ["key"]),
    ),
    ToolSpec(
        "scroll",
        "Scroll the page up or down by screens.",
        _obj(
            {"direction": {"type": "string", "enum": ["up", "down"]}, "pages": {"type": "number"}},
            ["direction"],
        ),
    ),
    ToolSpec("back", "Go back to the previous page.", _obj({}, [])),
    ToolSpec(
        "wait_for",
        "Wait until `text` appears on the page (or `seconds` pass, at most 10).",
        _obj({"text": {"type": "string"}, "seconds": {"type": "number"}}, []),
    ),
    ToolSpec(
        "extract",
        "Extract data from the current page following `instruction`, shaped by the JSON "
        "`schema` if given. Returns the extracted JSON.",
        _obj({"instruction": {"type": "string"}, "schema": {"type": "object"}}, ["instruction"]),
    ),
    ToolSpec("screenshot", "Take a screenshot of the page (shown to vision models).", _obj({}, [])),
    ToolSpec(
        "memory_get",
        "Read a value from the task's memory.",
        _obj({"key": {"type": "string"}}, ["key"]),
    ),
    ToolSpec(
        "memory_set",
        "Store a JSON value in the task's memory.",
        _obj({"key": {"type": "string"}, "value": {}}, ["key", "value"]),
    ),
    ToolSpec(
        "run_subtask",
        "Run another task (a built-in skill or a registered handler) and get its result.",
        _obj(
            {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "inputs": {"type": "object"},
                "skill": {"type": "string"},
            },
            ["name"],
        ),
    ),
]

ELEMENT_TOOLS = frozenset({"click", "type", "select", "check"})
_NO_ARGS_LABEL = frozenset({"back", "screenshot", "scroll", "wait_for"})


class ToolFailed(Exception):
    """A tool could not do what was asked; the message goes back to the model."""


@dataclass
class Acted:
    """What a tool did: a short result for the model, a locator for the trace."""

    result: str
    locator: dict[str, Any] | None = None
    image: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def label(name: str, args: dict[str, Any], obs: Observation | None) -> str:
    """How a step reads in ``current_action``: ``click "Add to cart" [12]``."""
    ref = as_ref(args.get("ref"))
    el = obs.element(ref) if obs is not None and ref is not None else None
    target = f" {json.dumps(el['name'], ensure_ascii=False)[:60]} [{ref}]" if el else ""
    if name == "navigate":
        return f"navigate {str(args.get('url', ''))[:100]}"
    if name == "type":
        return f"type{target} {json.dumps(str(args.get('text', '')))[:60]}"
    if name == "select":
        return f"select{target} {json.dumps(str(args.get('option', '')))[:60]}"
    if name == "press":
        return f"press {args.get('key')}{target}"
    if name in ("click", "check"):
        return f"{name}{target or f' [{ref}]'}"
    if name == "extract":
        return f"extract {json.dumps(str(args.get('instruction', '')))[:80]}"
    if name in _NO_ARGS_LABEL:
        return name
    shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in args.items())
    return f"{name}({shown[:100]})"


def as_ref(value: Any) -> int | None:
    """An element ref as models send it: 12, 12.0, "12" or "[12]"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().strip("[]").isdigit():
        return int(value.strip().strip("[]"))
    return None


def locator_of(el: dict[str, Any]) -> dict[str, Any]:
    keep = ("role", "name", "tag", "css", "pos", "href", "type")
    return {k: el[k] for k in keep if k in el}


class BrowserActions:
    """Carries out browser tools on one page; every request still goes through the policy."""

    def __init__(
        self, page: Page, redactor: Redactor, policy: Any, timeout: float, tab: Tab | None = None
    ) -> None:
        self.page = page
        self.tab = tab
        self.redactor = redactor
        self.policy = policy
        self.timeout_ms = timeout * 1000

    def _element(self, ref: Any, obs: Observation | None) -> tuple[Locator, dict[str, Any]]:
        number = as_ref(ref)
        if number is None:
            raise ToolFailed(f"ref must be an element number such as 3, got {ref!r}")
        el = obs.element(number) if obs is not None else None
        if el is None:
            raise ToolFailed(f"no element [{number}] in the latest observation; use its refs")
        return self.page.locator(f'[data-aesop-ref="{number}"]'), el

    async def _settle(self) -> None:
        # Playwright awaits the start of a navigation an action caused; we wait for it to
        # commit, then for the new document to load.
        if self.tab is not None:
            await self.tab.settled(min(self.timeout_ms / 1000, 5.0))
        with contextlib.suppress(Exception):
            await self.page.wait_for_load_state("load", timeout=min(self.timeout_ms, 10_000))
        if await self._recover():
            raise ToolFailed(
                "the navigation was refused by the task's policy or failed; "
                f"still on {self.page.url}"
            )

    async def _recover(self, net_error: bool = False) -> bool:
        """After a refused or failed navigation, go back to the page we were on (True)."""
        if self.tab is not None:  # the error page commits after goto has already raised
            await self.tab.settled(min(self.timeout_ms / 1000, 5.0))
        if net_error and not self.page.url.startswith("chrome-error://"):
            # The navigation failed on the network: Chromium's error page is on its way even
            # if no commit has been seen yet; going on without it, a later observation would
            # land on the error page instead of the page we say we are still on.
            with contextlib.suppress(Exception):
                await self.page.wait_for_url(
                    lambda u: u.startswith("chrome-error://"), wait_until="commit", timeout=1000
                )
        if not self.page.url.startswith("chrome-error://"):
            return False
        if self.tab is not None and self.tab.limit_hit:
            from ...errors import PageLimitExceeded

            raise PageLimitExceeded(
                f"max_pages={self.tab.max_pages} reached; raise TaskConfig.max_pages"
            )
        with contextlib.suppress(Exception):
            await self.page.go_back(wait_until="load", timeout=self.timeout_ms)
        return True

    async def navigate(self, url: str) -> Acted:
        try:
            self.policy.check_url(url)
        except PolicyViolation as exc:
            raise ToolFailed(f"navigation refused by the task's policy: {exc}") from None
        resp = await self.page.goto(url, wait_until="load", timeout=self.timeout_ms)
        status = resp.status if resp is not None else None
        return Acted(f"opened {self.page.url} (HTTP {status})", {"url": url})

    async def do(self, name: str, args: dict[str, Any], obs: Observation | None) -> Acted:
        from playwright.async_api import Error as PlaywrightError

        try:
            return await self._do(name, args, obs)
        except PlaywrightError as exc:
            msg = self.redactor.text(exc.message.split("\n")[0])
            await self._recover(net_error="net::ERR_" in exc.message)
            if "ERR_BLOCKED_BY_CLIENT" in msg:
                msg += " (refused by the task's policy)"
            raise ToolFailed(f"{name} failed: {msg}; still on {self.page.url}") from None

    async def _do(self, name: str, args: dict[str, Any], obs: Observation | None) -> Acted:
        page, t = self.page, self.timeout_ms
        if name == "navigate":
            return await self.navigate(str(args.get("url", "")))
        if name == "back":
            await page.go_back(wait_until="load", timeout=t)
            return Acted(f"went back to {page.url}")
        if name == "scroll":
            pages = float(args.get("pages") or 1)
            sign = -1 if args.get("direction") == "up" else 1
            await page.evaluate("(d) => window.scrollBy(0, d * innerHeight)", sign * pages)
            return Acted("scrolled")
        if name == "wait_for":
            seconds = min(10.0, float(args.get("seconds") or 5), t / 1000)
            text = args.get("text")
            if text:
                try:
                    await page.get_by_text(str(text)).first.wait_for(timeout=seconds * 1000)
                except Exception:
                    raise ToolFailed(f"{text!r} did not appear within {seconds:g}s") from None
                return Acted(f"{text!r} is on the page")
            await asyncio.sleep(seconds)
            return Acted(f"waited {seconds:g}s")
        if name == "screenshot":
            png = await page.screenshot(type="png")
            return Acted("screenshot taken", image=png)
        if name == "press":
            key = str(args.get("key", ""))
            if args.get("ref") is not None:
                loc, el = self._element(args["ref"], obs)
                await loc.press(key, timeout=t)
                await self._settle()
                return Acted(f"pressed {key}", locator_of(el))
            await page.keyboard.press(key)
            await self._settle()
            return Acted(f"pressed {key}")
        loc, el = self._element(args.get("ref"), obs)
        if name == "click":
            await loc.click(timeout=t)
            await self._settle()
            return Acted(f"clicked {el['role']} {el['name']!r}", locator_of(el))
        if name == "type":
            text = str(args.get("text", ""))
            try:
                real = self.redactor.fill(text)
            except KeyError as exc:
                raise ToolFailed(
                    f"unknown secret {exc.args[0]!r}; the secrets are {self.redactor.names}"
                ) from None
            await loc.fill(real, timeout=t)
            if args.get("submit"):
                await loc.press("Enter", timeout=t)
                await self._settle()
            return Acted(f"typed into {el['name']!r}", locator_of(el))
        if name == "select":
            option = str(args.get("option", ""))
            try:
                await loc.select_option(label=option, timeout=t)
            except Exception:
                await loc.select_option(value=option, timeout=t)
            return Acted(f"selected {option!r}", locator_of(el))
        if name == "check":
            want = args.get("checked", True) is not False
            await loc.set_checked(want, timeout=t)
            return Acted(("checked " if want else "unchecked ") + repr(el["name"]), locator_of(el))
        raise ToolFailed(f"unknown tool {name!r}")
