"""The static site on Amplify Hosting: an app whose every unknown path falls back to Reflex's
`404.html` (the SPA shell, answered with status 200), one branch, and manual zip deployments of
the export folder.

The site is deployed only when its content changed: the branch carries a tag with the hash of
the last deployed files. Building the export is not done here (the backend URL is baked into
it, so it is built after `up` wrote the outputs file).
"""

from __future__ import annotations

import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import not_found
from deploy.context import Context, DeployError
from deploy.names import TAG_KEY

REWRITE = {"source": "/<*>", "target": "/404.html", "status": "404-200"}
SITE_TAG = "agent-web:site-sha256"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entries carry no build time: same files, same zip


def ensure(ctx: Context) -> str:
    """The site's URL (`https://<branch>.<app domain>`); the app and branch exist after."""
    amplify, name = ctx.clients.amplify, ctx.names.amplify_app
    what = f"Amplify app {name}"
    app = find(ctx)
    if app is None:
        app = amplify.create_app(
            name=name,
            description=f"Agent Web ({ctx.names.prefix}), made by python -m deploy",
            platform="WEB",
            customRules=[REWRITE],
            enableBranchAutoBuild=False,
            tags=ctx.names.tags,
        )["app"]
        ctx.report.created(what)
    elif app.get("customRules") != [REWRITE]:
        app = amplify.update_app(appId=app["appId"], customRules=[REWRITE])["app"]
        ctx.report.updated(what, "rewrite rule /<*> -> /404.html (404-200)")
    else:
        ctx.report.exists(what)
    branch = _ensure_branch(ctx, str(app["appId"]))
    site_url = f"https://{branch}.{app['defaultDomain']}"
    ctx.outputs.amplify_app_id, ctx.outputs.site_url = str(app["appId"]), site_url
    return site_url


def deploy(ctx: Context, app_id: str, folder: Path) -> None:
    """Upload the export folder as a zip and wait for Amplify to publish it."""
    amplify, branch = ctx.clients.amplify, ctx.settings.branch
    what = f"site {folder}"
    if not (folder / "index.html").is_file():
        ctx.report.skipped(
            what,
            "no export there yet: build it with the outputs file, then run `up` again",
        )
        return
    data, digest, count = pack(folder)
    found = amplify.get_branch(appId=app_id, branchName=branch)["branch"]
    if (found.get("tags") or {}).get(SITE_TAG) == digest:
        ctx.report.exists(f"{what}, {count} files")
        return
    started = amplify.create_deployment(appId=app_id, branchName=branch)
    upload(started["zipUploadUrl"], data)
    amplify.start_deployment(appId=app_id, branchName=branch, jobId=started["jobId"])
    ctx.wait("Amplify deployment", lambda: _job(ctx, app_id, started["jobId"]))
    amplify.tag_resource(resourceArn=found["branchArn"], tags={SITE_TAG: digest})
    ctx.report.updated(what, f"{count} files deployed to {ctx.outputs.site_url}")


def pack(folder: Path) -> tuple[bytes, str, int]:
    """The folder as a zip (paths sorted, times fixed), the hash of its files' paths and bytes,
    and how many files."""
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            name = path.relative_to(folder).as_posix()
            body = path.read_bytes()
            entry = zipfile.ZipInfo(name, FIXED_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, body)
            digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    return buffer.getvalue(), digest.hexdigest(), len(files)


def upload(url: str, data: bytes) -> None:
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": "application/zip"}
    )
    with urllib.request.urlopen(request, timeout=300) as answer:
        if answer.status >= 300:
            raise DeployError(f"Amplify refused the upload: HTTP {answer.status}")


def find(ctx: Context) -> dict[str, Any] | None:
    amplify = ctx.clients.amplify
    token: str | None = None
    while True:
        page = amplify.list_apps(maxResults=100, **({"nextToken": token} if token else {}))
        for app in page["apps"]:
            if app["name"] == ctx.names.amplify_app:
                found: dict[str, Any] = app
                return found
        token = page.get("nextToken")
        if not token:
            return None


def remove(ctx: Context) -> None:
    what = f"Amplify app {ctx.names.amplify_app}"
    app = find(ctx)
    if app is None:
        ctx.report.absent(what)
    elif (app.get("tags") or {}).get(TAG_KEY) != ctx.names.prefix:
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
    else:
        ctx.clients.amplify.delete_app(appId=app["appId"])
        ctx.report.deleted(what)


def status(ctx: Context) -> None:
    what = f"Amplify app {ctx.names.amplify_app}"
    app = find(ctx)
    if app is None:
        ctx.report.state(what, "absent")
        return
    branch = (app.get("productionBranch") or {}).get("status", "no deployment yet")
    ctx.report.state(what, f"https://{ctx.settings.branch}.{app['defaultDomain']} ({branch})")


def _ensure_branch(ctx: Context, app_id: str) -> str:
    amplify, branch = ctx.clients.amplify, ctx.settings.branch
    what = f"Amplify branch {branch}"
    try:
        amplify.get_branch(appId=app_id, branchName=branch)
    except ClientError as error:
        if not not_found(error):
            raise
        amplify.create_branch(
            appId=app_id,
            branchName=branch,
            stage="PRODUCTION",
            enableAutoBuild=False,
            tags=ctx.names.tags,
        )
        ctx.report.created(what)
        return branch
    ctx.report.exists(what)
    return branch


def _job(ctx: Context, app_id: str, job_id: str) -> tuple[bool, str]:
    summary = ctx.clients.amplify.get_job(
        appId=app_id, branchName=ctx.settings.branch, jobId=job_id
    )["job"]["summary"]
    state = str(summary["status"])
    if state in ("FAILED", "CANCELLED"):
        raise DeployError(f"Amplify deployment {job_id} {state}; see the Amplify console")
    return state == "SUCCEED", state
