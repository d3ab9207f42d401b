"""`python -m app.devtools.agentcore [options] [-- container command...]`: serve until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import uvicorn

from app.devtools.agentcore import EmulatorApp, EmulatorSettings
from app.devtools.agentcore.config import DEFAULT_RUNTIME_ARN, default_container_command


def _env_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_settings(argv: Sequence[str] | None = None) -> EmulatorSettings:
    """The settings from the command line; AgentCore's defaults where a flag is not given."""
    defaults = EmulatorSettings(container_command=("unused",))
    parser = argparse.ArgumentParser(
        prog="python -m app.devtools.agentcore",
        description="A local AgentCore Runtime in front of one local process per session.",
        epilog="Example: python -m app.devtools.agentcore --discovery-url "
        "https://cognito-idp.<region>.amazonaws.com/<pool>/.well-known/openid-configuration "
        "--allowed-client <client id> -- python deploy/probe_app.py",
    )
    parser.add_argument("--host", default=defaults.host)
    parser.add_argument("--port", type=int, default=defaults.port)
    parser.add_argument(
        "--env",
        type=_env_pair,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for containers (repeatable)",
    )
    parser.add_argument("--discovery-url", help="OpenID discovery URL; none: no token checks")
    parser.add_argument(
        "--allowed-client", action="append", default=[], help="allowed app client id (repeatable)"
    )
    parser.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s)
    parser.add_argument("--max-lifetime", type=float, default=defaults.max_lifetime_s)
    parser.add_argument("--connection-limit", type=float, default=defaults.connection_limit_s)
    parser.add_argument("--frame-limit", type=int, default=defaults.frame_limit)
    parser.add_argument(
        "--forward-query",
        action="store_true",
        help="pass query parameters other than AgentCore's to containers (UNKNOWN on AWS)",
    )
    parser.add_argument("--runtime-arn", default=DEFAULT_RUNTIME_ARN)
    parser.add_argument("--start-timeout", type=float, default=defaults.start_timeout_s)
    parser.add_argument("--ping-interval", type=float, default=defaults.ping_interval_s)
    parser.add_argument("--stop-grace", type=float, default=defaults.stop_grace_s)
    parser.add_argument(
        "command", nargs="*", help="container command (default: python -m app.container)"
    )
    args = parser.parse_args(argv)
    try:
        return EmulatorSettings(
            host=args.host,
            port=args.port,
            container_command=tuple(args.command) or default_container_command(),
            container_env=dict(args.env),
            discovery_url=args.discovery_url,
            allowed_clients=tuple(args.allowed_client),
            idle_timeout_s=args.idle_timeout,
            max_lifetime_s=args.max_lifetime,
            connection_limit_s=args.connection_limit,
            frame_limit=args.frame_limit,
            forward_query=args.forward_query,
            runtime_arn=args.runtime_arn,
            start_timeout_s=args.start_timeout,
            ping_interval_s=args.ping_interval,
            stop_grace_s=args.stop_grace,
        )
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: Sequence[str] | None = None) -> None:
    settings = parse_settings(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per health check otherwise
    logging.getLogger(__name__).info(
        "AgentCore emulator on http://%s:%d/runtimes/<URL-encoded %s>/invocations",
        settings.host,
        settings.port,
        settings.runtime_arn,
    )
    uvicorn.run(EmulatorApp(settings), host=settings.host, port=settings.port, lifespan="on")


if __name__ == "__main__":
    main()
