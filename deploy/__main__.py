"""`python -m deploy [--config deploy.toml] {up,status,down,probe}`; see deploy/README.md."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy import plan, probe
from deploy.aws import Clients
from deploy.config import DEFAULT_OUTPUTS, ConfigError, load_settings
from deploy.context import Context, DeployError
from deploy.outputs import Outputs
from deploy.report import Report


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m deploy", description=__doc__)
    top.add_argument("--config", type=Path, help="a TOML file of settings (environment wins)")
    commands = top.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create or update everything; write the outputs file")
    up.add_argument("--image", help="deploy this image URI instead of building one")
    up.add_argument("--outputs", type=Path, help="where to write the outputs (JSON)")
    commands.add_parser("status", help="show each resource and its state")
    down = commands.add_parser("down", help="remove what `up` and `probe` made")
    down.add_argument(
        "--delete-data",
        action="store_true",
        help="also the bucket, the database cluster and the ECR repository",
    )
    down.add_argument("--yes", action="store_true", help="do not ask before --delete-data")
    site = commands.add_parser(
        "site-env", help="print the static export's variables (KEY=value) from the outputs"
    )
    site.add_argument("--outputs", type=Path, help="the outputs file `up` wrote")
    check = commands.add_parser("probe", help="deploy the probe container and call it once")
    check.add_argument("--image", help="use this probe image URI instead of building one")
    check.add_argument("--down", action="store_true", help="remove the probe")
    return top


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    clients: Clients | None = None,
) -> int:
    args = parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    if args.command == "site-env":
        return _site_env(args.outputs or Path(environ.get("DEPLOY_OUTPUTS") or DEFAULT_OUTPUTS))
    report = Report()
    try:
        settings = load_settings(environ, args.config)
        if getattr(args, "outputs", None):
            settings = replace(settings, outputs=args.outputs)
        if clients is None:
            clients = Clients.from_session(boto3.Session(region_name=settings.region))
        ctx = Context.open(settings, clients, report)
        if args.command == "up":
            plan.up(ctx, args.image)
        elif args.command == "status":
            plan.status(ctx)
        elif args.command == "down":
            if args.delete_data and not (args.yes or _confirmed(ctx.names.bucket)):
                print("Nothing deleted.")
                return 1
            plan.down(ctx, args.delete_data)
        elif args.down:
            probe.down(ctx)
        else:
            probe.up(ctx, args.image)
    except (ConfigError, DeployError) as error:
        print(error, file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as error:
        print(f"AWS refused: {error}", file=sys.stderr)
        return 1
    return 0


def _site_env(path: Path) -> int:
    """For the site's build: `env $(python -m deploy site-env) reflex export --frontend-only`."""
    try:
        variables = Outputs.read(path).site_env()
    except (OSError, ValueError, TypeError) as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 2
    for name, value in variables.items():
        print(f"{name}={value}")
    return 0


def _confirmed(bucket: str) -> bool:
    answer = input(
        f"Delete bucket {bucket} (every user's workspaces), the database cluster (every user's "
        "accounts and sessions) and the images? [y/N] "
    )
    return answer.strip().lower() in ("y", "yes")


if __name__ == "__main__":
    sys.exit(main())
