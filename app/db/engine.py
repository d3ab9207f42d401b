"""Database engine creation: SQLite under the data directory by default, PostgreSQL by URL.

With `iam_auth="dsql"` the PostgreSQL server is an Aurora DSQL cluster and the password of each
new connection is a short-lived IAM auth token, signed locally by boto3 just before connecting.
The token lives only in the driver's connect arguments: never in the URL, a log or an error.
"""

from __future__ import annotations

import logging
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.exceptions import BotoCoreError
from sqlalchemy import URL, Engine, event, make_url
from sqlmodel import create_engine

from app.db.migrations import migrate

IamAuth = Literal["off", "dsql"]

# A token only has to be valid when a connection is opened; DSQL itself ends connections after
# an hour. Pooled connections are replaced well before either limit.
TOKEN_SECONDS = 900
POOL_RECYCLE_SECONDS = 600

# <cluster id>.dsql.<region>.on.aws (PrivateLink names add a suffix: .dsql-xxxx.)
_DSQL_HOST = re.compile(r"^[a-z0-9]+\.dsql(?:-[a-z0-9]+)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.on\.aws$")


def open_database(url: str, *, iam_auth: IamAuth = "off", region: str | None = None) -> Engine:
    """Create the engine for `url` and bring its schema up to date.

    `iam_auth="dsql"` signs an Aurora DSQL token for every new connection; `region` is used
    when the URL's host is not a DSQL endpoint naming its own region (see `dsql_region`).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if iam_auth == "dsql" and not url.startswith("postgresql"):
        raise ValueError("DATABASE_IAM_AUTH=dsql needs a postgresql:// DATABASE_URL")
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    elif iam_auth == "dsql":
        target = dsql_url(url)
        host, user = target.host or "", target.username or "admin"
        tokens = DsqlTokens(host, dsql_region(host, region), user)
        engine = create_engine(target, pool_pre_ping=True, pool_recycle=POOL_RECYCLE_SECONDS)
        event.listen(engine, "do_connect", tokens.on_connect)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    migrate(engine)
    return engine


def dsql_url(url: str) -> URL:
    """`url` made ready for DSQL: role `admin` unless one is named, no password, database
    `postgres` unless one is named, and `sslmode=require` (unless set) for DSQL endpoints."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if not parsed.host:
        raise ValueError("DATABASE_URL: DATABASE_IAM_AUTH=dsql needs the cluster's host name")
    query = dict(parsed.query)
    if is_dsql_host(parsed.host):
        query.setdefault("sslmode", "require")
    return parsed.set(
        username=parsed.username or "admin",
        password=None,
        database=parsed.database or "postgres",
        query=query,
    )


def is_dsql_host(host: str) -> bool:
    return _DSQL_HOST.match(host.lower()) is not None


def dsql_region(host: str, region: str | None = None) -> str:
    """The region to sign for: the one a DSQL endpoint names (a token signed for any other is
    refused), else `region`, AWS_REGION, AWS_DEFAULT_REGION or the AWS profile's."""
    match = _DSQL_HOST.match(host.lower())
    found = (
        (match.group(1) if match else None)
        or region
        or os.environ.get("AWS_REGION", "").strip()
        or boto3.session.Session().region_name
    )
    if not found:
        raise ValueError(
            "DATABASE_IAM_AUTH=dsql: no AWS region to sign tokens for; set AWS_REGION or use the "
            "cluster's endpoint <cluster id>.dsql.<region>.on.aws in DATABASE_URL"
        )
    return str(found)


class DsqlTokens:
    """Signs a fresh DSQL auth token for `user` at `host`, one per new connection."""

    def __init__(self, host: str, region: str, user: str) -> None:
        self.host, self.region, self.user = host, region, user
        client = boto3.session.Session().client("dsql", region_name=region)
        self._sign = (
            client.generate_db_connect_admin_auth_token
            if user == "admin"
            else client.generate_db_connect_auth_token
        )
        for name in ("botocore.auth", "botocore.signers"):
            if _QUIET not in logging.getLogger(name).filters:
                logging.getLogger(name).addFilter(_QUIET)

    def __call__(self) -> str:
        signing = _SIGNING.set(True)
        try:
            return str(self._sign(Hostname=self.host, Region=self.region, ExpiresIn=TOKEN_SECONDS))
        except BotoCoreError as error:  # e.g. no credentials; botocore's text holds no secret
            raise RuntimeError(
                f"DATABASE_IAM_AUTH=dsql: cannot sign a token for {self.user}@{self.host} "
                f"({self.region}): {error}"
            ) from None
        finally:
            _SIGNING.reset(signing)

    def on_connect(self, _dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        """SQLAlchemy's `do_connect` event: the password for this one connection attempt."""
        cparams["password"] = self()


# botocore logs each signature, and the request it signs, at DEBUG: for a DSQL token that is
# the password, so those records are dropped while a token is being signed (in this thread).
_SIGNING: ContextVar[bool] = ContextVar("dsql_signing", default=False)


class _QuietWhileSigning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _SIGNING.get()


_QUIET = _QuietWhileSigning()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    """WAL lets the UI read while the engine writes; foreign keys stay off by design."""
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
