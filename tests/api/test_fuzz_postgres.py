"""The fuzz of tests/api/test_fuzz.py on PostgreSQL, which refuses what SQLite keeps (NUL
characters, out-of-range numbers): the same tests over an API on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devtools.model_server import ModelServer
from tests.api.conftest import Api, serve_api, settings_env
from tests.api.test_fuzz import (  # noqa: F401 - collected here too, on this module's API
    test_no_operation_answers_with_a_server_error,
    test_no_ws_operation_answers_with_a_server_error,
    tokens,
)
from tests.conftest import fresh_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def fuzzed_api(
    tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer
) -> Iterator[Api]:
    data = Path(tmp_path_factory.mktemp("fuzz-postgres"))
    with (
        fresh_postgres_database() as url,
        serve_api(settings_env(data, model_server, DATABASE_URL=url)) as api,
    ):
        yield api
