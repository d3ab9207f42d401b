"""Property-based fuzzing of every operation in the OpenAPI description: never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env


@pytest.fixture(scope="module")
def fuzzed_api(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer
) -> Iterator[Api]:
    with serve_api(settings_env(Path(tmp_path_factory.mktemp("fuzz")), model_server)) as api:
        yield api


@pytest.fixture(scope="module")
def fuzz_token(fuzzed_api: Api) -> str:
    return fuzzed_api.sign_up("fuzz@example.com")


def test_no_operation_answers_with_a_server_error(fuzzed_api: Api, fuzz_token: str) -> None:
    schema = schemathesis.openapi.from_url(fuzzed_api.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_token}"}
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers, timeout=30)
            assert response.status_code < 500, (case.method, case.path, response.text[:300])

        fuzz()
        checked.append(operation.label)
    assert len(checked) >= 20, checked
