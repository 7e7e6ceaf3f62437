"""TASKS.md's monitoring task, run offline against a local HTTPS site that has an outage.

    python examples/monitor_website.py [--seconds 12] [--out PATH]

The site stands in for ``https://example.com``: a local server with a certificate for
``example.com`` (from a throw-away CA made here; its certificate expires in 20 days, so the
``ssl`` check has something to say). ``AESOP_HOSTS``, the policy resolver's hosts override,
maps the name to 127.0.0.1, so every check still passes the policy gate; the task opts in to
loopback addresses with ``allow_private_network=True``. The URL carries the server's port.

The site answers, fails with HTTP 503 for a while, then recovers. The monitor (two checks a
second) alerts once when it goes down and once when it recovers; the handler runs in this
process while the checks run in a worker process. At the end it prints the summary and writes
an HTML report (latency chart, incidents, certificate) to ``--out``, by default into a new
temporary directory (never into the working tree), and prints its path.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.execution import Alert


def make_certs(folder: Path, host: str, days: int) -> tuple[Path, Path, Path]:
    """A CA and a certificate for ``host`` signed by it; returns (ca.pem, cert.pem, key.pem)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Offline CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


class Site(ThreadingHTTPServer):
    daemon_threads = True
    failing = False
    tls: ssl.SSLContext

    def get_request(self) -> tuple[Any, Any]:
        conn, addr = super().get_request()
        # Handshake in the handler's thread, not in the accept loop.
        return self.tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class Handler(BaseHTTPRequestHandler):
    server: Site

    def setup(self) -> None:
        self.request.do_handshake()
        super().setup()

    def do_GET(self) -> None:
        status, body = (503, b"maintenance") if self.server.failing else (200, b"<h1>Hello</h1>")
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--out", help="where to write the HTML report (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.out or Path(tempfile.mkdtemp(prefix="aesop-monitor-")) / "report.html")

    with tempfile.TemporaryDirectory(prefix="aesop-monitor-") as tmp:
        ca, cert, key = make_certs(Path(tmp), "example.com", days=20)
        # Set before the client starts its workers, which inherit them: trust the local CA,
        # and resolve example.com to the local site.
        os.environ["SSL_CERT_FILE"] = str(ca)
        os.environ["AESOP_HOSTS"] = "example.com=127.0.0.1"

        site = Site(("127.0.0.1", 0), Handler)
        site.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        site.tls.load_cert_chain(cert, key)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        url = f"https://example.com:{site.server_address[1]}/"

        def outage() -> None:
            time.sleep(args.seconds / 4)
            site.failing = True
            time.sleep(args.seconds / 4)
            site.failing = False

        threading.Thread(target=outage, daemon=True).start()

        monitor_task = Task(
            name="monitor_website",
            description="Monitor website availability and performance",
            config=TaskConfig(
                max_duration_seconds=args.seconds,
                requests_per_second=2,  # one check every 0.5 s
                allow_private_network=True,  # example.com is served from 127.0.0.1 here
            ),
            inputs={
                "url": url,
                "checks": ["uptime", "latency", "ssl"],
                "alert_threshold_ms": 1000,
            },
        )

        with Aesoperator(data_dir=Path(tmp) / "data") as aesop:
            # Run monitoring task in background
            execution = aesop.execute_task_async(monitor_task)

            # Setup alert handler
            def handle_alert(alert: Alert) -> None:
                print(f"Alert: {alert.message}")
                print(f"Metrics: {alert.metrics}")

            execution.on_alert(handle_alert)
            result = execution.result()
        site.shutdown()

    print()
    print(result.summary)
    print(result.content)
    print("report:", result.save_report(out))


if __name__ == "__main__":
    main()
