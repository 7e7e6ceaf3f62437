"""The single policy gate: every request a task makes is checked here first.

``Policy.check_url`` normalises a URL the way a browser would (WHATWG-ish: tabs and newlines
dropped, backslashes as slashes, user-info stripped, lower case, IDNA, trailing dot, numeric
IPv4 forms, default ports) and applies the scheme and domain rules. ``Policy.resolve`` turns a
host into the IP addresses a connection may use and refuses private, loopback, link-local and
cloud-metadata addresses unless ``TaskConfig.allow_private_network`` is set. Callers connect
only to the addresses ``resolve`` returned, so a DNS answer cannot change between check and
connect.

Rules named in ``PolicyViolation.rule``: ``invalid_url``, ``scheme``, ``require_https``,
``blocked_domains``, ``allowed_domains``, ``private_network``, ``cloud_metadata``,
``dns`` (the resolver answered something that is not an address). A name that does not
resolve is no refusal: ``resolve`` raises ``FetchError(transient=True)``, retried like a
refused connection.

For tests and demos, the environment variable ``AESOP_HOSTS`` (``name=ip,name=ip``) works like
an ``/etc/hosts`` file for this resolver; its answers are checked like any other.
``AESOP_TRUSTED_HOSTS`` (same form) is the operator's explicit route for a name: the operator
vouches for the address, so the private-network check does not apply to it (cloud metadata is
still refused, and every domain rule still holds). It lets code written for the public web run
unchanged against local stand-ins (TASKS.md's snippets in the test suite).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from ..errors import FetchError, PolicyViolation
from ..task import TaskConfig

__all__ = ["Policy"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def is_default_port(scheme: str, port: int) -> bool:
    """Is ``port`` the default of ``scheme`` (a URL then shows no port)?"""
    return _DEFAULT_PORTS.get(scheme) == port


# Schemes that never leave the machine; fine for subresources, never for a navigation.
_LOCAL_SCHEMES = frozenset({"data", "blob", "about"})
_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6
    }
)
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space, trimmed by browsers

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class _Parts:
    scheme: str
    host: str
    port: int
    url: str


def refusal(message: str, *, url: str | None, rule: str) -> PolicyViolation:
    """A ``PolicyViolation`` whose message ends with the rule's name."""
    return PolicyViolation(f"{message} [rule: {rule}]", url=url, rule=rule)


def _parse_ipv4_number(part: str) -> int | None:
    if part == "":
        return None
    base = 10
    if part[:2].lower() == "0x":
        base, part = 16, part[2:]
    elif len(part) > 1 and part[0] == "0":
        base, part = 8, part[1:]
    if part == "":
        return 0
    try:
        return int(part, base)
    except ValueError:
        return None


def _whatwg_ipv4(host: str) -> str | None:
    """``0x7f.1``, ``2130706433`` and friends as a browser reads them, else ``None``."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or len(parts) > 4:
        return None
    if _parse_ipv4_number(parts[-1]) is None:
        return None  # the last label is not numeric: a domain name
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        raise ValueError("not a valid IPv4 address")
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise ValueError("not a valid IPv4 address")
    value = nums[-1]
    for i, n in enumerate(nums[:-1]):
        value += n * 256 ** (3 - i)
    return str(ipaddress.IPv4Address(value))


@functools.lru_cache(maxsize=4096)
def normalise_host(raw: str) -> str:
    """Lower-case ASCII host: IDNA, no trailing dot, IP literals in canonical form."""
    host = raw.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        return str(ipaddress.IPv6Address(host[1:-1].split("%")[0]))
    host = host.rstrip(".")
    if not host:
        raise ValueError("empty host")
    if any(ch in host for ch in " %/\\<>^|@#?"):
        raise ValueError("forbidden character in host")
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise ValueError(f"invalid international name ({exc})") from None
    v4 = _whatwg_ipv4(host)
    return v4 if v4 is not None else host


def _split(url: str) -> _Parts:
    text = url.strip(_STRIP).replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, sep, rest = text.partition(":")
    scheme = scheme.lower()
    if not sep:
        raise ValueError("no scheme")
    if scheme in _DEFAULT_PORTS:
        # Browsers read "\" as "/" in special URLs; doing the same keeps host parsing identical.
        rest = rest.replace("\\", "/")
        text = f"{scheme}:{rest}"
    parts: SplitResult = urlsplit(text)
    if scheme not in _DEFAULT_PORTS:
        return _Parts(scheme, "", 0, text)
    netloc = parts.netloc.rpartition("@")[2]  # user-info never counts
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise ValueError("unclosed IPv6 bracket")
        host_raw, port_raw = netloc[: end + 1], netloc[end + 1 :].removeprefix(":")
        if netloc[end + 1 :] and not netloc[end + 1 :].startswith(":"):
            raise ValueError("junk after IPv6 address")
    else:
        host_raw, _, port_raw = netloc.partition(":")
    host = normalise_host(host_raw)
    if port_raw:
        if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
            raise ValueError(f"bad port {port_raw!r}")
        port = int(port_raw)
    else:
        port = _DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    netloc_out = shown_host if port == _DEFAULT_PORTS[scheme] else f"{shown_host}:{port}"
    path = parts.path or "/"
    return _Parts(scheme, host, port, urlunsplit((scheme, netloc_out, path, parts.query, "")))


def normalise_url(url: str) -> str:
    """``url`` as ``check_url`` would return it, without applying any rule (keys, dedup)."""
    try:
        return _split(url).url
    except ValueError:
        return url


def _domain_match(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def _hosts_override(variable: str = "AESOP_HOSTS") -> dict[str, str]:
    table: dict[str, str] = {}
    for item in os.environ.get(variable, "").split(","):
        name, sep, ip = item.strip().partition("=")
        if sep and name and ip:
            table[normalise_host(name)] = ip.strip()
    return table


class Policy:
    """What a task may reach. Built from a ``TaskConfig``; immutable.

    >>> p = Policy.from_config(TaskConfig(allowed_domains=["wikipedia.org"]))
    >>> p.check_url("HTTPS://En.Wikipedia.org./wiki/X#top")
    'https://en.wikipedia.org/wiki/X'
    """

    def __init__(
        self,
        *,
        allowed_domains: tuple[str, ...] = (),
        blocked_domains: tuple[str, ...] = (),
        require_https: bool = False,
        allow_private_network: bool = False,
        hosts: dict[str, str] | None = None,
        trusted_hosts: dict[str, str] | None = None,
    ) -> None:
        self.allowed_domains = allowed_domains
        self.blocked_domains = blocked_domains
        self.require_https = require_https
        self.allow_private_network = allow_private_network
        self._hosts = _hosts_override() if hosts is None else dict(hosts)
        self._trusted = (
            _hosts_override("AESOP_TRUSTED_HOSTS") if trusted_hosts is None else dict(trusted_hosts)
        )

    @classmethod
    def from_config(cls, config: TaskConfig) -> Policy:
        """The policy of a task: its domain lists, ``require_https``, ``allow_private_network``."""
        return cls(
            allowed_domains=tuple(config.allowed_domains),
            blocked_domains=tuple(config.blocked_domains),
            require_https=config.require_https,
            allow_private_network=config.allow_private_network,
        )

    # -- URL rules ----------------------------------------------------------------------------
    def check_url(self, url: str, *, navigation: bool = True) -> str:
        """Normalise and check scheme/host/domain rules.

        Return the normalised URL (no user-info, no fragment, no default port) or raise
        ``PolicyViolation(url=..., rule=...)``. With ``navigation=False`` (a subresource),
        ``data:``, ``blob:`` and ``about:`` URLs pass: they never reach the network.
        ``ws:``/``wss:`` follow the same rules as ``http:``/``https:``.
        """
        try:
            parts = _split(url)
        except ValueError as exc:
            raise refusal(
                f"refused {url!r}: not a valid URL ({exc})", url=url, rule="invalid_url"
            ) from None
        if parts.scheme not in _DEFAULT_PORTS:
            if not navigation and parts.scheme in _LOCAL_SCHEMES:
                return parts.url
            raise refusal(
                f"refused {url!r}: scheme {parts.scheme!r} is not allowed; only http and https",
                url=url,
                rule="scheme",
            )
        if self.require_https and parts.scheme in ("http", "ws"):
            raise refusal(
                f"refused {url!r}: require_https=True forbids plain {parts.scheme}",
                url=url,
                rule="require_https",
            )
        host = parts.host
        is_ip = _is_ip(host) is not None
        for domain in self.blocked_domains:
            if host == domain or (not is_ip and _domain_match(host, domain)):
                raise refusal(
                    f"refused {url!r}: host {host!r} is in blocked_domains ({domain!r})",
                    url=url,
                    rule="blocked_domains",
                )
        if self.allowed_domains and not any(
            host == d or (not is_ip and _domain_match(host, d)) for d in self.allowed_domains
        ):
            raise refusal(
                f"refused {url!r}: host {host!r} is not in allowed_domains "
                f"{list(self.allowed_domains)}",
                url=url,
                rule="allowed_domains",
            )
        ip = _is_ip(host)
        if ip is not None:
            self._check_ip(ip, url)
        return parts.url

    def host_port(self, url: str) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of a URL that ``check_url`` accepted."""
        parts = _split(url)
        return parts.scheme, parts.host, parts.port

    # -- addresses ----------------------------------------------------------------------------
    def _check_ip(self, ip: IPAddress, url: str) -> None:
        if self.allow_private_network:
            return
        target = _embedded_ipv4(ip) or ip
        if target in _METADATA:
            raise refusal(
                f"refused {url!r}: {target} is a cloud-metadata address; "
                "set allow_private_network=True only if you really mean it",
                url=url,
                rule="cloud_metadata",
            )
        if not target.is_global or target.is_multicast:
            raise refusal(
                f"refused {url!r}: {target} is a private, loopback or link-local address; "
                "set TaskConfig(allow_private_network=True) to reach local servers",
                url=url,
                rule="private_network",
            )

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve ``host`` and return the IPs to connect to (connect ONLY to these).

        Every address is checked: private, loopback, link-local and metadata addresses are
        refused unless ``allow_private_network``. A name with any refused address is refused
        as a whole, so round-robin answers cannot slip one through. A name that does not
        resolve raises ``FetchError(transient=True)``.
        """
        try:
            name = normalise_host(host)
        except ValueError as exc:
            raise refusal(f"refused host {host!r}: {exc}", url=host, rule="invalid_url") from None
        label = f"{name}:{port}"
        literal = _is_ip(name)
        if literal is not None:
            self._check_ip(literal, label)
            return [str(literal)]
        trusted = self._trusted.get(name)
        if trusted is not None:
            ip = _is_ip(trusted)
            if ip is None or ip in _METADATA:
                raise refusal(
                    f"refused {label}: AESOP_TRUSTED_HOSTS maps it to {trusted!r}",
                    url=label,
                    rule="cloud_metadata" if ip is not None else "dns",
                )
            return [str(ip)]
        override = self._hosts.get(name)
        if override is not None:
            addrs = [override]
        else:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            except UnicodeError as exc:  # a label the IDNA codec refuses (over 63 characters)
                raise refusal(
                    f"refused host {host!r}: {exc}", url=label, rule="invalid_url"
                ) from None
            except OSError as exc:
                # Not a refusal: DNS fails for a while (offline, a resolver down) and
                # then works again, so it may be retried like a refused connection.
                raise FetchError(
                    f"{label}: the name does not resolve ({exc})", url=label, transient=True
                ) from None
            addrs = []
            for info in infos:
                addr = str(info[4][0]).split("%")[0]
                if addr not in addrs:
                    addrs.append(addr)
        out: list[str] = []
        for addr in addrs:
            ip = _is_ip(addr)
            if ip is None:
                raise refusal(f"refused {label}: resolver gave {addr!r}", url=label, rule="dns")
            self._check_ip(ip, label)
            out.append(str(ip))
        if not out:
            raise FetchError(f"{label}: the name has no address", url=label, transient=True)
        return out
