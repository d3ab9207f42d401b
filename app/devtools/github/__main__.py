"""`python -m app.devtools.github [--user alice] [--repo alice/demo]`: serve until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from app.devtools.github import GitHubStandIn


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app.devtools.github",
        description="A local GitHub (web, REST API under /api/v3, git over HTTP) for development.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--root", type=Path, help="where the bare repositories go (default: temp)")
    parser.add_argument("--user", action="append", default=[], help="a user (repeatable)")
    parser.add_argument(
        "--repo", action="append", default=[], help="OWNER/NAME, private, with a README"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    root = args.root or Path(tempfile.mkdtemp(prefix="github-stand-in-"))
    users = args.user or ["octocat"]
    with GitHubStandIn(root, args.host, args.port) as github:
        for login in users:
            github.add_user(login)
        for full_name in args.repo or [f"{users[0]}/hello-world"]:
            owner, _, name = full_name.partition("/")
            github.add_repo(owner, name, {"README.md": f"# {name}\n"})
        github.signed_in_as = users[0]
        print(f"GITHUB_URL={github.web_url}")
        print(f"GITHUB_API_URL={github.api_url}")
        print(f"GITHUB_OAUTH_CLIENT_ID={github.client_id}")
        print(f"GITHUB_OAUTH_CLIENT_SECRET={github.client_secret}")
        for login in users:
            print(f"token for {login}: {github.token_for(login)}")
        print(f"signed in at the stand-in as {users[0]}; repositories in {root}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
