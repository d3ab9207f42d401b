"""Aurora DSQL with IAM auth: a fresh signed token is the password of every new connection.

The local PostgreSQL (trust auth) stands in for the cluster: it accepts any password, so these
tests check what the driver was given. Tokens are real ones, signed by boto3 with dummy keys.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from app.db.engine import (
    POOL_RECYCLE_SECONDS,
    TOKEN_SECONDS,
    DsqlTokens,
    dsql_region,
    dsql_url,
    open_database,
)
from app.settings import SettingsError, load_settings
from tests.conftest import POSTGRES_URL

KEY_ID = "AKIDDSQLTEST0000000"
REGION = "eu-west-1"
DSQL_HOST = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws"
LOCAL = "127.0.0.1"


@pytest.fixture(autouse=True)
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and a region from the environment, nothing from a real profile."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dsql-test-secret-key")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def database_owned_by(role: str) -> Iterator[str]:
    """A new database owned by `role` (made if missing, like DSQL's `admin`); dropped after."""
    name = "test_dsql_" + uuid.uuid4().hex[:12]
    server = create_engine(
        POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    made_role = False
    try:
        with server.connect() as conn:
            known = text("SELECT 1 FROM pg_roles WHERE rolname = :r")
            if not conn.execute(known, {"r": role}).all():
                with contextlib.suppress(ProgrammingError):  # made meanwhile by another run
                    conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
                    made_role = True
            conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{role}"'))
        yield name
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if made_role:
                with contextlib.suppress(Exception):  # another test may own something now
                    conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        server.dispose()


def passwords_given(engine: Engine) -> list[str]:
    """Every password handed to the driver from now on, read after open_database's listener."""
    seen: list[str] = []

    def capture(_d: Any, _r: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        seen.append(cparams["password"])

    event.listen(engine, "do_connect", capture)
    return seen


def driver_password(conn: Connection) -> str | None:
    """The password psycopg actually connected with."""
    return conn.connection.dbapi_connection.info.password  # type: ignore[union-attr]


def token_fields(token: str, *, host: str) -> dict[str, str]:
    """Check `token` is a SigV4 presigned DSQL URL for `host`; its query fields."""
    assert "://" not in token
    parts = urlsplit("https://" + token)
    assert (parts.hostname, parts.path) == (host, "/")
    fields = {k: v for k, [v] in parse_qs(parts.query, strict_parsing=True).items()}
    assert fields["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert re.fullmatch(r"[0-9a-f]{64}", fields["X-Amz-Signature"])
    assert re.fullmatch(r"\d{8}T\d{6}Z", fields["X-Amz-Date"])
    assert fields["X-Amz-Expires"] == str(TOKEN_SECONDS)
    assert fields["X-Amz-SignedHeaders"] == "host"
    key, day, region, service, kind = fields["X-Amz-Credential"].split("/")
    assert (key, day, service, kind) == (KEY_ID, fields["X-Amz-Date"][:8], "dsql", "aws4_request")
    fields["region"] = region
    return fields


@pytest.mark.postgres
def test_admin_connects_with_a_signed_token() -> None:
    with database_owned_by("admin") as name:
        engine = open_database(f"postgresql://{LOCAL}:5432/{name}", iam_auth="dsql")
        try:
            seen = passwords_given(engine)
            engine.dispose()  # open_database's own connection came before the capture
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == "admin"
                assert conn.execute(text("SELECT count(*) FROM schema_migrations")).scalar()
                assert driver_password(conn) == seen[0]
            [token] = seen
            fields = token_fields(token, host=LOCAL)
            assert (fields["Action"], fields["region"]) == ("DbConnectAdmin", REGION)
            assert engine.url.username == "admin" and engine.url.password is None
            assert 0 < engine.pool._recycle < TOKEN_SECONDS  # type: ignore[attr-defined]
            assert engine.pool._recycle == POOL_RECYCLE_SECONDS  # type: ignore[attr-defined]
            assert engine.pool._pre_ping  # type: ignore[attr-defined]
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_every_new_connection_gets_a_fresh_token() -> None:
    with database_owned_by("admin") as name:
        engine = open_database(f"postgresql://admin@{LOCAL}:5432/{name}", iam_auth="dsql")
        try:
            seen = passwords_given(engine)
            engine.dispose()
            time.sleep(1.1)  # SigV4 dates are to the second
            with engine.connect() as first:
                time.sleep(1.1)
                with engine.connect() as second:  # the first is busy: a new connection
                    assert second.execute(text("SELECT 1")).scalar() == 1
                    assert driver_password(second) == seen[1]
                assert driver_password(first) == seen[0]
            with engine.connect() as again:  # from the pool: no new token needed
                assert again.execute(text("SELECT 1")).scalar() == 1
            assert len(seen) == 2 and seen[0] != seen[1]
            dates = [token_fields(t, host=LOCAL)["X-Amz-Date"] for t in seen]
            signatures = [token_fields(t, host=LOCAL)["X-Amz-Signature"] for t in seen]
            assert dates[0] < dates[1] and signatures[0] != signatures[1]
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_another_role_gets_a_non_admin_token() -> None:
    with database_owned_by("postgres") as name:
        engine = open_database(f"postgresql://postgres@{LOCAL}:5432/{name}", iam_auth="dsql")
        try:
            seen = passwords_given(engine)
            engine.dispose()
            with engine.connect() as conn:
                assert conn.execute(text("SELECT current_user")).scalar() == "postgres"
            [token] = seen
            fields = token_fields(token, host=LOCAL)
            assert (fields["Action"], fields["region"]) == ("DbConnect", REGION)
        finally:
            engine.dispose()


@pytest.mark.postgres
def test_the_token_is_never_logged_nor_in_the_url_or_errors(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "botocore", "psycopg", "app"):
        caplog.set_level(logging.DEBUG, logger=name)
    with database_owned_by("admin") as name:
        engine = open_database(f"postgresql://{LOCAL}:5432/{name}", iam_auth="dsql")
        try:
            engine.echo = "debug"  # SQLAlchemy's own echo, to stdout, on top of logging
            seen = passwords_given(engine)
            engine.dispose()
            with engine.connect() as first, engine.connect() as second:
                first.execute(text("SELECT 1"))
                second.execute(text("SELECT 2"))
            url_forms = (str(engine.url), repr(engine.url), engine.url.render_as_string(False))
        finally:
            engine.dispose()
    with pytest.raises(OperationalError) as refused:  # a role the server does not know
        open_database(f"postgresql://nobody_{uuid.uuid4().hex[:8]}@{LOCAL}:5432/x", iam_auth="dsql")

    logged = caplog.text + capsys.readouterr().out
    assert any(r.name.startswith("sqlalchemy.pool") for r in caplog.records), "logging was on"
    assert "SELECT 2" in logged, "echo was on"
    assert len(seen) == 2
    for token in seen:
        signature = token_fields(token, host=LOCAL)["X-Amz-Signature"]
        for where in (logged, *url_forms):
            assert token not in where and signature not in where
    assert "Calculating signature" not in logged  # botocore's DEBUG lines during signing
    error = f"{refused.value}\n{refused.value.orig}\n{refused.value.__cause__}"
    assert "does not exist" in error and "X-Amz" not in error and "DbConnect" not in error


def test_the_dsql_endpoint_names_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION")
    assert dsql_region(DSQL_HOST) == "us-east-1"
    assert dsql_region("abc123.dsql-fnh4.ap-southeast-2.on.aws") == "ap-southeast-2"
    with pytest.raises(ValueError, match="AWS_REGION"):
        dsql_region(LOCAL)
    monkeypatch.setenv("AWS_REGION", REGION)
    assert dsql_region(LOCAL) == REGION
    assert dsql_region(DSQL_HOST) == "us-east-1", "a token signed for another region is refused"
    assert dsql_region(LOCAL, "ca-central-1") == "ca-central-1"


def test_a_dsql_endpoint_gets_ssl_the_admin_role_and_the_postgres_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION")
    url = dsql_url(f"postgresql://{DSQL_HOST}")
    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg", "admin", None)
    assert (url.host, url.database) == (DSQL_HOST, "postgres")
    assert dict(url.query) == {"sslmode": "require"}
    kept = dsql_url(f"postgresql://app_user@{DSQL_HOST}/postgres?sslmode=verify-full")
    assert (kept.username, kept.query["sslmode"]) == ("app_user", "verify-full")
    assert "sslmode" not in dsql_url(f"postgresql://{LOCAL}/test").query

    tokens = DsqlTokens(DSQL_HOST, dsql_region(DSQL_HOST), "admin")
    fields = token_fields(tokens(), host=DSQL_HOST)
    assert (fields["Action"], fields["region"]) == ("DbConnectAdmin", "us-east-1")
    other = token_fields(DsqlTokens(DSQL_HOST, "us-east-1", "app_user")(), host=DSQL_HOST)
    assert other["Action"] == "DbConnect"


def test_signing_without_credentials_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match=r"DATABASE_IAM_AUTH=dsql: cannot sign .*credentials"):
        DsqlTokens(DSQL_HOST, "us-east-1", "admin")()


def test_sqlite_with_dsql_auth_is_refused(tmp_path: Path) -> None:
    for url in ({"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}, {}):
        with pytest.raises(SettingsError) as caught:
            load_settings({"DATA_DIR": str(tmp_path), "DATABASE_IAM_AUTH": "dsql", **url})
        [problem] = caught.value.problems
        assert "DATABASE_IAM_AUTH" in problem and "DATABASE_URL" in problem
    with pytest.raises(ValueError, match="DATABASE_IAM_AUTH=dsql"):
        open_database(f"sqlite:///{tmp_path / 'app.db'}", iam_auth="dsql")


def test_the_setting_is_validated(tmp_path: Path) -> None:
    base = {"DATA_DIR": str(tmp_path), "DATABASE_URL": f"postgresql://admin@{DSQL_HOST}/postgres"}
    assert load_settings(base).database_iam_auth == "off"
    assert load_settings({**base, "DATABASE_IAM_AUTH": "dsql"}).database_iam_auth == "dsql"
    with pytest.raises(SettingsError, match="DATABASE_IAM_AUTH='iam': off or dsql"):
        load_settings({**base, "DATABASE_IAM_AUTH": "iam"})
    secret = "hunter2-not-a-token"
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                **base,
                "DATABASE_IAM_AUTH": "dsql",
                "DATABASE_URL": f"postgresql://admin:{secret}@{DSQL_HOST}/postgres",
            }
        )
    assert "no password with DATABASE_IAM_AUTH=dsql" in str(caught.value)
    assert secret not in str(caught.value)
