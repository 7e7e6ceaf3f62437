"""TASKS.md's monitoring task, run offline against a local site that has an outage.

    python examples/monitor_website.py [--seconds 12] [--out monitor_report.html]

A small local server answers normally, fails with HTTP 503 for a few seconds, then recovers.
The monitor (two checks a second) alerts once when it goes down and once when it recovers;
the handler runs in this process while the checks run in a worker process. At the end the
summary is printed and an HTML report (latency chart, incidents) is written.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aesoperator import Aesoperator, Task, TaskConfig
from aesoperator.execution import Alert


class Site(ThreadingHTTPServer):
    daemon_threads = True
    failing = False


class Handler(BaseHTTPRequestHandler):
    server: Site

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
    ap.add_argument("--out", default="monitor_report.html")
    args = ap.parse_args()

    site = Site(("127.0.0.1", 0), Handler)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{site.server_address[1]}/"

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
            allow_private_network=True,  # the site is on 127.0.0.1
        ),
        inputs={"url": url, "checks": ["uptime", "latency", "ssl"], "alert_threshold_ms": 1000},
    )

    with tempfile.TemporaryDirectory() as data_dir, Aesoperator(data_dir=data_dir) as aesop:
        execution = aesop.execute_task_async(monitor_task)

        def handle_alert(alert: Alert) -> None:
            print(f"Alert: {alert.message}")
            print(f"Metrics: {alert.metrics}")

        execution.on_alert(handle_alert)
        result = execution.result()

    print(result.summary)
    print(result.content)
    print("report:", result.save_report(Path(args.out)))
    site.shutdown()


if __name__ == "__main__":
    main()
