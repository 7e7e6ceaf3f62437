"""schemathesis against /openapi.json: no 5xx, and every answer matches the schema.

A bounded number of examples per operation, against a real server with a run token and a
few executions in the store, so the generated ids sometimes exist.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis

from aesoperator.service import ServiceSettings
from service._api import Served, check_against_schema, serving


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("schema"), ServiceSettings(rate_per_token=None)) as s:
        yield s


@pytest.fixture(scope="module")
def api_schema(served: Served) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.url}/openapi.json")


@pytest.fixture(scope="module")
def auth(served: Served) -> dict[str, str]:
    token = served.token("run")
    served.submit(token, "echo", wait=True, a=1)
    return {"Authorization": f"Bearer {token}"}


def test_no_5xx_and_answers_match_the_schema(
    api_schema: schemathesis.BaseSchema, auth: dict[str, str]
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    check_against_schema(operations, auth, max_examples=8)


def test_no_page_loads_a_script_from_a_cdn(served: Served) -> None:
    import httpx

    assert httpx.get(f"{served.url}/openapi.json").status_code == 200
    for path in ("/docs", "/redoc"):  # FastAPI's pages would load Swagger/ReDoc from a CDN
        assert httpx.get(f"{served.url}{path}").status_code == 404, path
