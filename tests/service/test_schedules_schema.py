"""schemathesis on the /v1/schedules operations of the served app: no 5xx, answers match."""

from __future__ import annotations

import sys
from pathlib import Path

import schemathesis

from aesoperator.service import ServiceSettings

sys.path.insert(0, str(Path(__file__).parent))  # for _sched, _api (tests use importlib mode)
from _api import check_against_schema
from _sched import served_app


def test_schedule_operations_match_the_schema(tmp_path: Path) -> None:
    quiet = ServiceSettings(rate_per_token=None, schedules=False)
    with served_app(tmp_path, quiet) as served:
        auth = {"Authorization": f"Bearer {served.token('admin')}"}
        with served.http(served.token("admin")) as http:  # so that GET lists one
            body = {"cron": "@daily", "task": {"name": "echo"}}
            assert http.post("/v1/schedules", json=body, headers=auth).status_code == 201
        api = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
        operations = [
            op.ok() for op in api.get_all_operations() if op.ok().path.startswith("/v1/schedules")
        ]
        assert len(operations) == 3
        check_against_schema(operations, auth, max_examples=20)
