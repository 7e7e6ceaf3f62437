"""``Task`` and ``TaskConfig``: what to do and the hard limits it runs under; ``Plan`` and
``Step``: a task's explicit steps (``planning/plan.py`` runs them).

All are immutable pydantic models. Invalid values raise :class:`aesoperator.ValidationError`
with a message that names the field, the value given and what is allowed.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal, NoReturn, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from ._bounds import NotJSON, shape_problem, short_repr, to_json
from .errors import ValidationError

MemoryScope = Literal["session", "permanent"]
FetchMode = Literal["auto", "http", "browser"]
PlannerChoice = Literal["auto", "handler", "skill", "plan", "llm"]
ResourceType = Literal["image", "font", "media", "stylesheet"]

_DEFAULT_BLOCKED: tuple[ResourceType, ...] = ("image", "font", "media")
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _describe(error: dict[str, Any], model: str) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
    field = f"{model}.{loc}" if loc else model
    value = error.get("input")
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    if kind == "extra_forbidden":
        return f"{field}: unknown field (value {value!r}); remove it or check the spelling"
    if kind == "missing":
        return f"{field}: required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{field}: got {short_repr(value)}; {msg}"


def _raise_clean(exc: PydanticValidationError, model: str) -> NoReturn:
    errors: list[dict[str, Any]] = [dict(e) for e in exc.errors(include_url=False)]
    for e in errors:  # an error about a secret never echoes its value
        if "secrets" in e.get("loc", ()) or "webhook_secret" in e.get("loc", ()):
            e["input"] = "[hidden]"
        elif "webhook_url" in e.get("loc", ()):
            e["input"] = mask_userinfo(e.get("input"))
    lines = [_describe(e, model) for e in errors]
    # from None: the pydantic error, chained, would print the values (secrets among them)
    raise ValidationError("invalid " + model + ": " + " | ".join(lines), errors=errors) from None


def normalize_domain(value: str, field: str) -> str:
    """Return ``value`` as a bare lower-case ASCII host name, or raise ``ValueError``.

    Accepts ``example.org``, ``Example.ORG.``, ``*.example.org`` (same as ``example.org``,
    which already covers subdomains), IDN names (stored as punycode), IPv4/IPv6 literals and
    ``localhost``. Refuses URLs, schemes, paths, ports and user-info; the message suggests the
    bare domain found in the value when there is one.
    """
    raw = value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"a domain must be a non-empty string; use a bare domain such as 'wikipedia.org' "
            f"in {field}"
        )
    hint = _suggest(value)
    fix = (
        f"use {hint!r} in {field}"
        if hint
        else f"use a bare domain such as 'wikipedia.org' in {field}"
    )
    value = value.strip()
    if "://" in value or value.lower().startswith(("http:", "https:")):
        raise ValueError(f"{raw!r} is a URL, not a domain; {fix}")
    if any(ch in value for ch in "/?#@ "):
        raise ValueError(f"{raw!r} has a path, query or user-info; {fix}")
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if ":" in value:
        raise ValueError(f"{raw!r} has a port; domains apply to every port, {fix}")
    return _host(value, raw, fix)


def _host(value: str, raw: str, fix: str) -> str:
    value = value.lower().rstrip(".")
    if value.startswith("*."):
        value = value[2:]
    try:
        ascii_name = value.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise ValueError(f"{raw!r} is not a valid domain name ({exc}); {fix}") from None
    labels = ascii_name.split(".")
    if not all(_LABEL.match(label) for label in labels) or len(ascii_name) > 253:
        raise ValueError(f"{raw!r} is not a valid domain name; {fix}")
    return ascii_name


def _suggest(value: str) -> str | None:
    """The bare domain a user most likely meant by ``value`` (a URL, host:port...), if any."""
    text = value.strip()
    try:
        host = urlsplit(text if "://" in text else "//" + text.lstrip("/")).hostname or ""
        if ":" in host:
            return str(ipaddress.ip_address(host))
        _host(host, host, "")  # valid?
    except ValueError:
        return None
    return host.rstrip(".").removeprefix("*.")


def check_webhook_url(url: str) -> str:
    """``url`` if it can be a webhook target (http/https, a host, no credentials), else a
    ``ValueError`` saying why and the fix. Addresses are checked at each delivery."""
    fix = "give an http(s) URL such as 'https://hooks.example.org/aesop'"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc}); {fix}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"scheme {parts.scheme!r} is not allowed; {fix}")
    if not parts.hostname:
        raise ValueError(f"the URL has no host; {fix}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "credentials in the URL (user:password@) would be stored and logged; remove "
            "them: deliveries are authenticated by their signature (webhook_secret)"
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in url):
        raise ValueError(f"the URL has white space or control characters; {fix}")
    return url


def mask_userinfo(url: Any) -> Any:
    """``url`` with a password in it replaced by ``***`` (for messages)."""
    if not isinstance(url, str) or "@" not in url:
        return url
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


class _Validated(BaseModel):
    """Raises our ``ValidationError`` (field, value, fix) instead of pydantic's."""

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        # Before anything walks the values recursively (pydantic, json, repr): a list nested
        # 100,000 deep would raise RecursionError there instead of a clear error here.
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, dict | list | tuple):
                    problem = shape_problem(value)
                    if problem is not None:
                        where = f"{cls.__name__}.{key}"
                        raise ValidationError(
                            f"invalid {cls.__name__}: {where}: {problem}",
                            errors=[{"loc": (key,), "type": "bounds", "msg": problem}],
                        )
        return data

    @model_validator(mode="wrap")
    @classmethod
    def _clean_errors(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except PydanticValidationError as exc:
            _raise_clean(exc, cls.__name__)

    @classmethod
    def model_validate_json(
        cls,
        json_data: str | bytes | bytearray,
        *,
        strict: bool | None = None,
        context: Any | None = None,
        **kwargs: Any,
    ) -> Self:
        """As pydantic's, but JSON that cannot be parsed (nested past pydantic's limit of 200
        levels, say) is our ``ValidationError`` too."""
        try:
            return super().model_validate_json(json_data, strict=strict, context=context, **kwargs)
        except PydanticValidationError as exc:
            _raise_clean(exc, cls.__name__)


class Step(BaseModel):
    """One action of a plan (see ``aesoperator.planning.plan`` for how plans run)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: str = Field(..., min_length=1, description="Built-in action or registered function.")
    args: dict[str, Any] = Field(default_factory=dict, description="JSON arguments.")
    save_as: str | None = Field(
        default=None, pattern=r"^[A-Za-z_]\w*$", description="Keep the output under this name."
    )


class Plan(BaseModel):
    """Steps run in order; the last step's output is the task's result."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(..., min_length=1)


class TaskConfig(_Validated):
    """Runtime limits and settings of a task. Every limit is hard: the runtime enforces it.

    Examples:
        >>> TaskConfig(max_pages=10, allowed_domains=["wikipedia.org"]).max_pages
        10
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    # Resource limits
    max_pages: int = Field(
        default=100,
        ge=1,
        description="Pages the task may fetch, sub-tasks included. Each page is reserved "
        "before its request is sent (the web gate, atomically), so never one more at any "
        "concurrency; the request past it fails with PageLimitExceeded.",
    )
    max_duration_seconds: float = Field(
        default=3600,
        gt=0,
        description="Wall-clock limit from the start of the run. At the deadline the worker "
        "cancels the task; one that ignores it is killed by the supervisor 1.5 s later. The "
        "execution fails with TimeLimitExceeded (a monitor completes instead: its duration "
        "is its schedule).",
    )
    max_memory_mb: int = Field(
        default=1024,
        ge=16,
        description="Memory of the execution's whole process tree (worker, threads, children such "
        "as Chromium; shared pages split between sharers), in MB. The supervisor samples it "
        "every 150 ms and kills the tree over it: MemoryLimitExceeded. Not enforced with "
        "isolation='inline'.",
    )

    # Access controls
    allowed_domains: list[str] = Field(
        default_factory=list,
        description="Bare domains the task may reach, subdomains included; empty means any. "
        "Checked by the policy gate on every request, redirect hop and browser subresource: "
        "PolicyViolation (rule allowed_domains).",
    )
    blocked_domains: list[str] = Field(
        default_factory=list,
        description="Bare domains never reached, subdomains included; wins over allowed_domains. "
        "The policy gate refuses them: PolicyViolation (rule blocked_domains).",
    )
    require_https: bool = Field(
        default=False,
        description="Refuse every plain-http request, redirects and browser subresources included "
        "(the policy gate: rule require_https).",
    )
    allow_private_network: bool = Field(
        default=False,
        description="Allow loopback, private, link-local and cloud-metadata addresses. Off, the "
        "policy gate refuses them (rules private_network, cloud_metadata), checked on the "
        "resolved IP that is then connected to (no re-resolution in between).",
    )
    respect_robots_txt: bool = Field(
        default=True,
        description="Obey robots.txt and its crawl-delay (the web gate, via protego); a refused "
        "page is a PolicyViolation (rule robots_txt).",
    )

    # Browser settings
    viewport_width: int = Field(
        default=1280,
        ge=100,
        le=10000,
        description="Browser viewport width in CSS pixels (browser fetches and screenshots).",
    )
    viewport_height: int = Field(
        default=720, ge=100, le=10000, description="Browser viewport height in CSS pixels."
    )
    user_agent: str | None = Field(
        default=None,
        min_length=1,
        description="User-Agent header of HTTP and browser requests, and the name robots.txt rules "
        "are matched against; None uses Aesoperator's own.",
    )
    fetch_mode: FetchMode = Field(
        default="auto",
        description="'http' (no browser), 'browser' (Chromium for every page), or 'auto' (HTTP "
        "first, the browser when the page needs scripts to show its content).",
    )
    block_resources: list[ResourceType] = Field(
        default_factory=lambda: list(_DEFAULT_BLOCKED),
        description="Browser resource types not loaded (saves time, memory and rate budget); the "
        "browser session refuses them before they reach the gate.",
    )

    # Retry behavior
    max_retries: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Retries of a transient failure (connection error, time-out, 5xx, 429) of a "
        "fetch or a ctx.step; policy refusals, validation errors and 4xx are never retried.",
    )
    retry_delay_seconds: float = Field(
        default=1.0,
        ge=0,
        description="First retry delay in seconds; doubles on each attempt, with jitter. A "
        "Retry-After header is honoured instead when longer.",
    )

    # Rate limiting
    requests_per_second: float | None = Field(
        default=None,
        gt=0,
        description="Ceiling on requests per second for the whole execution (a sliding window: no "
        "burst above it in any one-second window); None means no ceiling but robots.txt's "
        "crawl-delay.",
    )
    concurrent_requests: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Requests in flight at once for the execution (a semaphore in the web gate; "
        "also the browser's tab count).",
    )
    request_timeout_seconds: float = Field(
        default=30,
        gt=0,
        description="Time-out of one request in seconds, connect to last byte; a time-out is "
        "transient (retried), then a FetchError.",
    )
    max_response_bytes: int = Field(
        default=20 * 1024 * 1024,
        ge=1024,
        description="Largest response body read, in bytes: the body as sent and every layer of its "
        "Content-Encoding, counted while decoding; past it, FetchError (HTTP and browser alike).",
    )

    # LLM budgets (free-form tasks)
    max_steps: int = Field(
        default=50,
        ge=1,
        description="Steps the LLM planner may take (each a model call and its actions); past it "
        "the task fails with LimitExceeded.",
    )
    max_llm_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Token budget of the execution's model calls, checked before each call; None "
        "means no budget. Past it: LimitExceeded.",
    )
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        description="Cost budget in US dollars of the execution's model calls (from the provider's "
        "price list), checked before each call; None means no budget. Past it: LimitExceeded.",
    )

    @field_validator("allowed_domains", "blocked_domains", mode="before")
    @classmethod
    def _domains(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            hosts = [h for h in map(_suggest, value.split(",")) if h] or ["wikipedia.org"]
            raise ValueError(f"must be a list of domains, e.g. {hosts!r}")
        if not isinstance(value, list | tuple):
            raise ValueError("must be a list of domains such as ['wikipedia.org']")
        out: list[str] = []
        for item in value:
            name = normalize_domain(item, info.field_name)
            if name not in out:
                out.append(name)
        return out

    @field_validator(
        "max_pages", "max_memory_mb", "viewport_width", "viewport_height", "max_retries",
        "concurrent_requests", "max_response_bytes", "max_steps", "max_llm_tokens",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _whole(cls, value: Any) -> Any:
        # pydantic accepts "10" and 10.0 for ints; a limit typed as text is a mistake worth naming.
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError("must be a whole number")
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError("must be a whole number")
            return int(value)
        return value

    @field_validator(
        "max_duration_seconds", "retry_delay_seconds", "requests_per_second",
        "request_timeout_seconds", "max_cost_usd",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _number(cls, value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return value


class Task(_Validated):
    """A goal for Aesoperator: a name, inputs, limits and a memory scope.

    Examples:
        >>> Task(name="research", inputs={"topic": "ai"}).memory_scope
        'session'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        ...,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
        description="Identifier of the task; routes it to a handler or skill.",
    )
    description: str = Field(default="", max_length=10_000, description="What the task does.")
    config: TaskConfig = Field(default_factory=TaskConfig, description="Limits and settings.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="JSON-able parameters.")
    memory_scope: MemoryScope = Field(
        default="session",
        description="'session': memory of this execution only; 'permanent': kept per task name.",
    )
    skill: str | None = Field(
        default=None,
        description="Force a built-in skill ('research', 'summarize', 'data', 'monitor').",
    )
    planner: PlannerChoice = Field(
        default="auto", description="'auto' (handler, then skill, then LLM) or force one kind."
    )
    plan: Plan | None = Field(
        default=None,
        description="Explicit steps (actions with arguments) to run instead of planning; "
        "a list of steps is accepted.",
    )
    output_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON schema (or a pydantic model class) the result's data must match.",
    )
    secrets: dict[str, SecretStr] = Field(
        default_factory=dict,
        exclude=True,
        description="Values the task may type into pages by placeholder; never stored, "
        "never shown to a model, redacted from events and results.",
    )

    webhook_url: str | None = Field(
        default=None,
        max_length=2048,
        description="http(s) URL that gets a signed POST when the execution ends "
        "(completed, failed or cancelled).",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        exclude=True,
        description="Key of the webhook's HMAC-SHA256 signature; never stored. Default: the "
        "client's (or server's) webhook secret.",
    )

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else check_webhook_url(value)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 8:
            raise ValueError(
                "too short to sign with: use at least 8 characters, e.g. from "
                "secrets.token_urlsafe(32)"
            )
        return value

    @field_validator("secrets")
    @classmethod
    def _redactable_secrets(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        # A value too short to redact without mangling ordinary text would leak silently.
        from ._redact import MIN_LENGTH

        for name, secret in value.items():
            if len(secret.get_secret_value()) < MIN_LENGTH:
                raise ValueError(
                    f"secrets[{name!r}] is shorter than {MIN_LENGTH} characters, too short to "
                    "redact from events, results and model requests; use a longer value, or "
                    "pass it in inputs if it is not secret"
                )
        return value

    @field_validator("plan", mode="before")
    @classmethod
    def _plan(cls, value: Any) -> Any:
        return {"steps": value} if isinstance(value, list) else value

    @field_validator("output_schema", mode="before")
    @classmethod
    def _schema(cls, value: Any) -> Any:
        if isinstance(value, type) and issubclass(value, BaseModel):
            return value.model_json_schema()
        if value is not None and not isinstance(value, dict):
            raise ValueError("must be a JSON schema dict or a pydantic model class")
        return value

    @field_validator("inputs")
    @classmethod
    def _json_inputs(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            to_json(value, "inputs")
        except NotJSON as exc:
            raise ValueError(
                "inputs must be JSON-serialisable (str, numbers, bools, None, lists, dicts): "
                + exc.reason
            ) from None
        except ValueError as exc:  # too big
            raise ValueError(str(exc).removeprefix("inputs: ")) from None
        return value
