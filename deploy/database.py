"""The app's database: an Aurora DSQL cluster, which outlives the microVMs (each runtime session
boots a fresh one, and the app's SQLite on its disk would go with it), unless the settings give
a database URL of their own (`DEPLOY_DATABASE_URL`: then it is used as it is and never touched).

The runtime connects as DSQL's `admin` role with a fresh IAM token per connection, signed by
the app itself with the execution role's credentials (app/db/engine.py): its environment holds
the endpoint and never a password, and the role may connect to exactly this cluster
(deploy/policy.py).

A cluster has no name: `up` finds it again by its tag `agent-web:deployment=<prefix>`. It is
made with deletion protection and holds every user's accounts and sessions, so `down` keeps it
unless `--delete-data`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from deploy.aws import not_found
from deploy.context import Context, DeployError
from deploy.names import TAG_KEY, Names

ADMIN = "admin"  # DSQL's built-in role; the app connects as it unless the URL names another
# Usable: an idle or inactive cluster wakes up on the first connection.
READY = ("ACTIVE", "IDLE", "INACTIVE")
FAILED = ("FAILED",)
GOING = ("DELETING", "DELETED", "PENDING_DELETE")
# <cluster id>.dsql.<region>.on.aws (PrivateLink names add a suffix: .dsql-xxxx.), as the app
# recognises them (app/db/engine.py; a test keeps the two in step).
DSQL_HOST = re.compile(r"^([a-z0-9]+)\.dsql(?:-[a-z0-9]+)?\.([a-z]{2}(?:-[a-z]+)+-\d+)\.on\.aws$")


@dataclass(frozen=True)
class Database:
    """Where the runtime's database is and how it signs in."""

    url: str  # DATABASE_URL
    endpoint: str  # the host
    dsql: bool  # IAM tokens (DATABASE_IAM_AUTH=dsql), no password
    cluster_arn: str | None  # the DSQL cluster the execution role may connect to
    role: str = ADMIN  # the database role the app connects as
    cluster_id: str | None = None  # the cluster `up` made (None when given)

    def environment(self) -> dict[str, str]:
        return {"DATABASE_URL": self.url, "DATABASE_IAM_AUTH": "dsql" if self.dsql else "off"}


def endpoint(cluster_id: str, region: str) -> str:
    return f"{cluster_id}.dsql.{region}.on.aws"


def url(host: str) -> str:
    """The app's DATABASE_URL for a DSQL endpoint: role `admin`, database `postgres`, no
    password (each connection signs its own token)."""
    return f"postgresql://{ADMIN}@{host}/postgres"


def cluster_arn(names: Names, cluster_id: str, region: str) -> str:
    return f"arn:{names.partition}:dsql:{region}:{names.account}:cluster/{cluster_id}"


def given(ctx: Context) -> Database:
    """The settings' own database URL, as it is. A DSQL endpoint in it (of this account) gets
    IAM tokens and the execution role's grant; any other PostgreSQL is used as it is."""
    raw = str(ctx.settings.database_url)
    parts = urlsplit(raw)
    host = str(parts.hostname)
    match = DSQL_HOST.match(host)
    if match is None:
        return Database(url=raw, endpoint=host, dsql=False, cluster_arn=None)
    cluster_id, region = match.groups()
    return Database(
        url=raw,
        endpoint=host,
        dsql=True,
        cluster_arn=cluster_arn(ctx.names, cluster_id, region),
        role=parts.username or ADMIN,
    )


def ensure(ctx: Context) -> Database:
    """The deployment's cluster, created with deletion protection if missing (and protected
    again if someone turned that off). Does not wait: `wait_ready` does, so the cluster comes
    up while the image is built."""
    if not ctx.settings.manages_database:
        found = given(ctx)
        ctx.report.line("✓", f"database {found.endpoint} (given: DEPLOY_DATABASE_URL)")
        ctx.outputs.database_endpoint = found.endpoint
        return found
    dsql = ctx.clients.dsql
    live = [c for c in find(ctx) if c["status"] not in GOING]
    if len(live) > 1:
        raise DeployError(
            f"several Aurora DSQL clusters are tagged {TAG_KEY}={ctx.names.prefix}: "
            f"{', '.join(sorted(c['identifier'] for c in live))}; keep one (untag or delete "
            "the others) or set DEPLOY_DATABASE_URL"
        )
    if not live:
        cluster = dsql.create_cluster(deletionProtectionEnabled=True, tags=tags(ctx))
        ctx.report.created(f"Aurora DSQL cluster {cluster['identifier']}", "deletion protection on")
    else:
        cluster = live[0]
        what = f"Aurora DSQL cluster {cluster['identifier']}"
        if cluster["status"] in FAILED:
            raise DeployError(f"{what}: FAILED; delete it (`down --delete-data`) and run `up`")
        changed = []
        if not cluster.get("deletionProtectionEnabled"):
            dsql.update_cluster(identifier=cluster["identifier"], deletionProtectionEnabled=True)
            changed.append("deletion protection on")
        missing = {k: v for k, v in tags(ctx).items() if cluster["tags"].get(k) != v}
        if missing:
            dsql.tag_resource(resourceArn=cluster["arn"], tags=missing)
            changed.append("tags")
        if changed:
            ctx.report.updated(what, ", ".join(changed))
        else:
            ctx.report.exists(what)
    host = endpoint(str(cluster["identifier"]), ctx.settings.region)
    ctx.outputs.database_endpoint = host
    return Database(
        url=url(host),
        endpoint=host,
        dsql=True,
        cluster_arn=str(cluster["arn"]),
        cluster_id=str(cluster["identifier"]),
    )


def wait_ready(ctx: Context, database: Database) -> None:
    """Until the cluster `ensure` found or made takes connections (a new one: a minute or
    two), one line per state."""
    if database.cluster_id is None:
        return
    cluster_id = database.cluster_id
    what = f"Aurora DSQL cluster {cluster_id}"

    def check() -> tuple[bool, str]:
        state = str(ctx.clients.dsql.get_cluster(identifier=cluster_id)["status"])
        if state in FAILED or state in GOING:
            raise DeployError(f"{what}: {state}; delete it (`down --delete-data`) and run `up`")
        return state in READY, state

    ctx.wait(what, check)


def find(ctx: Context) -> list[dict[str, Any]]:
    """The clusters tagged for this deployment (GetCluster's answers, with their tags)."""
    dsql = ctx.clients.dsql
    found = []
    for page in dsql.get_paginator("list_clusters").paginate():
        for summary in page["clusters"]:
            try:
                cluster_tags = dsql.list_tags_for_resource(resourceArn=summary["arn"]).get(
                    "tags", {}
                )
                if cluster_tags.get(TAG_KEY) != ctx.names.prefix:
                    continue
                cluster: dict[str, Any] = dsql.get_cluster(identifier=summary["identifier"])
            except ClientError as error:
                if not_found(error):  # gone since it was listed
                    continue
                raise
            cluster["tags"] = cluster_tags
            found.append(cluster)
    return found


def tags(ctx: Context) -> dict[str, str]:
    """The deployment's tag, and a name for the console (clusters have only an id)."""
    return {**ctx.names.tags, "Name": ctx.names.prefix}


def remove(ctx: Context, delete_data: bool) -> None:
    """Keeps the cluster (every user's data) unless `delete_data`: then its deletion
    protection goes off and it is deleted, waiting until it is gone."""
    if not ctx.settings.manages_database:
        ctx.report.kept(f"database {given(ctx).endpoint}", "given: DEPLOY_DATABASE_URL")
        return
    clusters = find(ctx)
    if not clusters:
        ctx.report.absent(f"Aurora DSQL cluster tagged {TAG_KEY}={ctx.names.prefix}")
    for cluster in clusters:
        cluster_id = str(cluster["identifier"])
        what = f"Aurora DSQL cluster {cluster_id}"
        if not delete_data:
            ctx.report.kept(what, "every user's data is there; add --delete-data to delete it")
            continue
        if cluster["status"] not in GOING:
            if cluster.get("deletionProtectionEnabled"):
                ctx.clients.dsql.update_cluster(
                    identifier=cluster_id, deletionProtectionEnabled=False
                )
                ctx.wait(what, partial(_settled, ctx, cluster_id))
            ctx.clients.dsql.delete_cluster(identifier=cluster_id)
        ctx.wait(what + " deletion", partial(_gone, ctx, cluster_id))
        ctx.report.deleted(what)


def status(ctx: Context) -> None:
    if not ctx.settings.manages_database:
        ctx.report.state(f"database {given(ctx).endpoint}", "given (DEPLOY_DATABASE_URL)")
        return
    clusters = find(ctx)
    if not clusters:
        ctx.report.state(f"Aurora DSQL cluster tagged {TAG_KEY}={ctx.names.prefix}", "absent")
    for cluster in clusters:
        protection = "on" if cluster.get("deletionProtectionEnabled") else "OFF"
        ctx.report.state(
            f"Aurora DSQL cluster {cluster['identifier']}",
            f"{cluster['status']}, {endpoint(str(cluster['identifier']), ctx.settings.region)}"
            f", deletion protection {protection}",
        )


def _settled(ctx: Context, cluster_id: str) -> tuple[bool, str]:
    """Done updating (deletion is refused while a cluster is UPDATING)."""
    state = str(ctx.clients.dsql.get_cluster(identifier=cluster_id)["status"])
    return state != "UPDATING", state


def _gone(ctx: Context, cluster_id: str) -> tuple[bool, str]:
    try:
        answer = ctx.clients.dsql.get_cluster(identifier=cluster_id)
    except ClientError as error:
        if not_found(error):
            return True, "deleted"
        raise
    state = str(answer["status"])
    return state == "DELETED", state
