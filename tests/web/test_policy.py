"""``Policy``: URL normalisation and the rules, as the rest of the system relies on them."""

from __future__ import annotations

import asyncio

import pytest

from aesoperator import FetchError, PolicyViolation, TaskConfig
from aesoperator.web import Policy


def _rule(policy: Policy, url: str, navigation: bool = True) -> str | None:
    try:
        policy.check_url(url, navigation=navigation)
    except PolicyViolation as exc:
        assert exc.url == url
        assert exc.rule and str(exc).endswith(f"[rule: {exc.rule}]")
        return exc.rule
    return None


WIKI = Policy.from_config(TaskConfig(allowed_domains=["wikipedia.org"]))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://En.Wikipedia.ORG./wiki/X#top", "https://en.wikipedia.org/wiki/X"),
        ("https://en.wikipedia.org:443/a?b=1", "https://en.wikipedia.org/a?b=1"),
        ("http://user:pw@wikipedia.org:8080", "http://wikipedia.org:8080/"),
        ("https://bücher.wikipedia.org/", "https://xn--bcher-kva.wikipedia.org/"),
        (" https://wikipedia.org/a\tb\n ", "https://wikipedia.org/ab"),
    ],
)
def test_normalisation(url, expected):
    assert WIKI.check_url(url) == expected


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://en.wikipedia.org/", None),
        ("https://wikipedia.org/", None),
        ("https://notwikipedia.org/", "allowed_domains"),
        ("https://wikipedia.org.evil.com/", "allowed_domains"),
        ("http://wikipedia.org@evil.com/", "allowed_domains"),
        ("http://wikipedia.org:80@evil.com/", "allowed_domains"),
        ("javascript:alert(1)", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("ftp://wikipedia.org/", "scheme"),
        ("data:text/html,hi", "scheme"),
        ("http://[::1", "invalid_url"),
        ("http://wikipedia.org:99999/", "invalid_url"),
    ],
)
def test_domain_and_scheme_rules(url, rule):
    assert _rule(WIKI, url) == rule


def test_blocked_wins_and_covers_subdomains():
    p = Policy.from_config(
        TaskConfig(allowed_domains=["example.org"], blocked_domains=["ads.example.org"])
    )
    assert _rule(p, "https://ADS.example.org./x") == "blocked_domains"
    assert _rule(p, "https://cdn.ads.example.org/x") == "blocked_domains"
    assert _rule(p, "https://www.example.org/x") is None


def test_require_https_everywhere():
    p = Policy.from_config(TaskConfig(require_https=True))
    assert _rule(p, "http://example.org/") == "require_https"
    assert _rule(p, "ws://example.org/s", navigation=False) == "require_https"
    assert _rule(p, "wss://example.org/s", navigation=False) is None
    assert _rule(p, "https://example.org/") is None


def test_local_schemes_only_for_subresources():
    p = Policy.from_config(TaskConfig())
    assert _rule(p, "data:image/png;base64,AAAA", navigation=False) is None
    assert _rule(p, "blob:https://example.org/1", navigation=False) is None
    assert _rule(p, "data:text/html,hi", navigation=True) == "scheme"


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1/", "private_network"),
        ("http://2130706433/", "private_network"),
        ("http://0x7f.1/", "private_network"),
        ("http://0177.0.0.1/", "private_network"),
        ("http://[::1]/", "private_network"),
        ("http://[::ffff:127.0.0.1]/", "private_network"),
        ("http://[64:ff9b::7f00:1]/", "private_network"),  # NAT64 of 127.0.0.1
        ("http://[2002:a9fe:a9fe::1]/", "cloud_metadata"),  # 6to4 of 169.254.169.254
        ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "private_network"),  # Teredo
        ("http://10.1.2.3/", "private_network"),
        ("http://192.168.0.1/", "private_network"),
        ("http://169.254.169.254/latest/meta-data/", "cloud_metadata"),
        ("http://[fd00:ec2::254]/", "cloud_metadata"),
        ("http://0.0.0.0/", "private_network"),
        ("http://93.184.215.14/", None),
    ],
)
def test_private_addresses_refused_without_opt_in(url, rule):
    assert _rule(Policy.from_config(TaskConfig()), url) == rule
    assert _rule(Policy.from_config(TaskConfig(allow_private_network=True)), url) is None


def test_resolve_checks_every_address():
    p = Policy(hosts={"public.test": "127.0.0.1", "meta.test": "169.254.169.254"})
    with pytest.raises(PolicyViolation) as info:
        asyncio.run(p.resolve("public.test", 80))
    assert info.value.rule == "private_network"
    with pytest.raises(PolicyViolation) as info:
        asyncio.run(p.resolve("META.test.", 80))
    assert info.value.rule == "cloud_metadata"
    opted = Policy(allow_private_network=True, hosts={"public.test": "127.0.0.1"})
    assert asyncio.run(opted.resolve("public.test", 80)) == ["127.0.0.1"]
    assert asyncio.run(opted.resolve("localhost", 80))[0] in ("127.0.0.1", "::1")


def test_a_name_that_does_not_resolve_is_a_transient_fetch_error_not_a_refusal():
    with pytest.raises(
        FetchError, match=r"no-such-host\.invalid:80: the name does not resolve"
    ) as info:
        asyncio.run(Policy().resolve("no-such-host.invalid", 80))
    assert info.value.transient
    with pytest.raises(PolicyViolation) as refused:  # a label IDNA refuses is no DNS failure
        asyncio.run(Policy().resolve("a" * 70 + ".org", 80))
    assert refused.value.rule == "invalid_url"
