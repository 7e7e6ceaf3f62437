"""Certificate details a monitor reports, read with ``cryptography`` (verified or not)."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509


@dataclass(frozen=True, slots=True)
class CertInfo:
    """The leaf certificate a server presented."""

    subject: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    serial: str

    def days_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds() / 86400.0

    def matches_host(self, host: str) -> bool:
        """RFC 6125 matching on the SANs: exact names, a left-most ``*`` label, IP addresses."""
        try:
            ip = str(ipaddress.ip_address(host.strip("[]")))
        except ValueError:
            ip = None
        if ip is not None:
            return ip in self.ip_addresses
        name = host.lower().rstrip(".")
        for pattern in self.dns_names:
            pattern = pattern.lower().rstrip(".")
            if pattern == name:
                return True
            if pattern.startswith("*.") and "." in name:
                head, rest = name.split(".", 1)
                if head and rest == pattern[2:]:
                    return True
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "sans": [*self.dns_names, *self.ip_addresses],
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "serial": self.serial,
        }


@functools.lru_cache(maxsize=32)  # the same few certificates come back on every check
def cert_info(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    dns: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(san.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        pass
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        dns_names=dns,
        ip_addresses=ips,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        serial=format(cert.serial_number, "x"),
    )
