"""The AWS deployment on one machine: `python -m app.devtools.local_aws` (`make aws-local`).

What runs, and what it stands in for:
- moto's server: Cognito (a user pool with e-mail sign-in and a public client) and S3 (the
  workspace bucket; an S3-compatible endpoint such as SeaweedFS can be given instead);
- the AgentCore emulator (`app.devtools.agentcore`): the runtime's data plane with its JWT
  authorizer, running `python -m app.container` once per runtime session on an empty disk;
- the static export (`reflex export --frontend-only`, built for that runtime's socket and the
  Cognito endpoint) served with Amplify's rewrite rule (`app.devtools.amplify`);
- the database, Aurora DSQL in AWS: a SQLite file here (or DATABASE_URL), outliving microVMs.
The tests run the same topology (tests/browser/test_agentcore.py).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from moto.server import ThreadedMotoServer

from app.devtools.agentcore import DEFAULT_RUNTIME_ARN, AgentCoreEmulator, EmulatorSettings
from app.devtools.amplify import create_site
from app.devtools.threaded import ThreadedServer

logger = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"  # moto answers Cognito's unsigned calls from this region only
LOCAL_KEYS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


@dataclass(frozen=True, kw_only=True)
class LocalAwsSettings:
    data_dir: Path  # the database and the export's build folder live here
    site_port: int = 3000
    emulator_port: int = 8090
    web_workdir: Path | None = None  # Reflex's build folder for the export (default: data_dir)
    s3_endpoint: str | None = None  # another S3 server; default: moto's own S3
    s3_keys: Mapping[str, str] = field(default_factory=lambda: dict(LOCAL_KEYS))
    database_url: str | None = None
    container_env: Mapping[str, str] = field(default_factory=dict)
    connection_limit_s: float = 3_600
    idle_timeout_s: float = 900


class LocalAws:
    """Start with `start()` (or `with`); every part stops with `stop()`."""

    def __init__(self, settings: LocalAwsSettings) -> None:
        self.settings = settings
        self.moto_url = ""
        self.pool_id = ""
        self.client_id = ""
        self.bucket = ""
        self._moto: ThreadedMotoServer | None = None
        self._emulator: AgentCoreEmulator | None = None
        self._site = ThreadedServer("static site", port=settings.site_port)

    @property
    def emulator(self) -> AgentCoreEmulator:
        if self._emulator is None:
            raise RuntimeError("LocalAws is not started")
        return self._emulator

    @property
    def site_url(self) -> str:
        return f"http://localhost:{self.settings.site_port}"

    @property
    def socket_url(self) -> str:
        arn = quote(DEFAULT_RUNTIME_ARN, safe="")
        return f"ws://localhost:{self.settings.emulator_port}/runtimes/{arn}/ws"

    def cognito(self) -> Any:
        return boto3.client("cognito-idp", endpoint_url=self.moto_url, **_boto_args())

    def start(self) -> LocalAws:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        _step("Cognito and S3 (moto)", self.moto_url)
        self.pool_id, self.client_id = _user_pool(self.cognito())
        s3_endpoint = settings.s3_endpoint or self.moto_url
        self.bucket = _bucket(s3_endpoint, settings.s3_keys)
        export = self._export()
        _step("static export", str(export))
        self._emulator = AgentCoreEmulator(
            EmulatorSettings(
                port=settings.emulator_port,
                discovery_url=f"{self.moto_url}/{self.pool_id}/.well-known/openid-configuration",
                allowed_clients=(self.client_id,),
                container_env=self._container_env(s3_endpoint),
                connection_limit_s=settings.connection_limit_s,
                idle_timeout_s=settings.idle_timeout_s,
                ping_interval_s=0.5,
            )
        )
        _step("AgentCore runtime (emulator)", self.emulator.start())
        self._site.start(create_site(export))
        _step("static site (Amplify's rewrite rule)", self.site_url)
        return self

    def stop(self) -> None:
        self._site.stop()
        if self._emulator is not None:
            self._emulator.stop()
        if self._moto is not None:
            self._moto.stop()
        self._emulator = self._moto = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _export(self) -> Path:
        """`reflex export --frontend-only` for this runtime, as CI builds it for Amplify."""
        workdir = self.settings.web_workdir or self.settings.data_dir / "web"
        env = {
            **_reflex_env(workdir),
            "DATA_DIR": str(self.settings.data_dir),
            "AGENTCORE_WS_URL": self.socket_url,
            "COGNITO_REGION": REGION,
            "COGNITO_CLIENT_ID": self.client_id,
            "COGNITO_ENDPOINT_URL": self.moto_url,
        }
        command = [sys.executable, "-m", "reflex", "export", "--frontend-only", "--no-zip"]
        done = subprocess.run(
            [*command, "--env", "prod"], cwd=REPO, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"reflex export failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
        return workdir / "build" / "client"

    def _container_env(self, s3_endpoint: str) -> dict[str, str]:
        settings = self.settings
        database = settings.database_url or f"sqlite:///{settings.data_dir / 'app.db'}"
        env = {
            **_reflex_env(settings.web_workdir or settings.data_dir / "web"),
            "AUTH_MODE": "cognito",
            "COGNITO_REGION": REGION,
            "COGNITO_USER_POOL_ID": self.pool_id,
            "COGNITO_CLIENT_ID": self.client_id,
            "COGNITO_JWKS_URL": f"{self.moto_url}/{self.pool_id}/.well-known/jwks.json",
            "COGNITO_ENDPOINT_URL": self.moto_url,
            "DATABASE_URL": database,
            "S3_BUCKET": self.bucket,
            "S3_ENDPOINT_URL": s3_endpoint,
            "AWS_REGION": REGION,
            **settings.s3_keys,
            **settings.container_env,
        }
        return env


def _boto_args() -> dict[str, str]:
    return {
        "region_name": REGION,
        "aws_access_key_id": LOCAL_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": LOCAL_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def _user_pool(cognito: Any) -> tuple[str, str]:
    """A pool signing users in by e-mail, and a public client for the browser (no secret)."""
    pool_id = cognito.create_user_pool(
        PoolName="agent-web-local", UsernameAttributes=["email"], AutoVerifiedAttributes=["email"]
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="agent-web",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ReadAttributes=["email", "email_verified"],
    )["UserPoolClient"]["ClientId"]
    return str(pool_id), str(client_id)


def _bucket(endpoint: str, keys: Mapping[str, str]) -> str:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
    )
    name = f"agent-web-local-{secrets.token_hex(4)}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def _reflex_env(workdir: Path) -> dict[str, str]:
    """The environment Reflex needs to build or run offline, in its own build folder."""
    # Nothing of a Reflex configured in this process (`__REFLEX_SKIP_COMPILE` would make the
    # build skip installing its packages).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REFLEX_", "__REFLEX"))}
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),  # bun
        REFLEX_TELEMETRY_ENABLED="false",
        REFLEX_CHECK_LATEST_VERSION="false",
        REFLEX_WEB_WORKDIR=str(workdir),
        PYTHONUNBUFFERED="1",
    )
    return env


def _step(what: str, where: str) -> None:
    print(f"✓ {what}: {where}", flush=True)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO / ".local-aws")
    parser.add_argument("--site-port", type=int, default=3000)
    parser.add_argument("--emulator-port", type=int, default=8090)
    args = parser.parse_args()
    for port in (args.site_port, args.emulator_port):
        if not _free(port):
            sys.exit(f"port {port} is taken: choose another with --site-port/--emulator-port")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    settings = LocalAwsSettings(
        data_dir=args.data_dir.resolve(),
        site_port=args.site_port,
        emulator_port=args.emulator_port,
        container_env={"DEMO_MODEL": "on"} if not os.environ.get("ANTHROPIC_API_KEY") else {},
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with LocalAws(settings) as aws:
        print(f"\nOpen {aws.site_url} and create an account (any confirmation code works).")
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()


if __name__ == "__main__":
    main()
