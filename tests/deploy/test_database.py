"""The database step against moto's Aurora DSQL: `up` makes a protected cluster and hands the
runtime its endpoint (never a password) and the execution role exactly that cluster; `down`
keeps it unless `--delete-data`; a database URL of one's own is used as it is, never touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from deploy import database, plan
from deploy.config import ConfigError, load_settings
from deploy.context import DeployError
from deploy.names import TAG_KEY
from tests.deploy.conftest import ACCOUNT, REGION, Stack

GIVEN_ID = "abcdefghijklmnopqrstuvwxyz"
GIVEN_DSQL = f"postgresql://admin@{GIVEN_ID}.dsql.{REGION}.on.aws/postgres"


@pytest.fixture
def slow_dsql() -> Iterator[None]:
    """Clusters take three looks to become ACTIVE (or to go), as AWS's take minutes."""
    from moto.moto_api import state_manager

    state_manager.set_transition("dsql::cluster", {"progression": "manual", "times": 3})
    yield
    state_manager.unset_transition("dsql::cluster")


def clusters(stack: Stack) -> list[dict[str, Any]]:
    """The account's clusters tagged for this deployment."""
    return database.find(stack.context())


def runtime_env(stack: Stack, runtime_id: str | None) -> dict[str, str]:
    found = stack.clients.runtimes.get_agent_runtime(agentRuntimeId=runtime_id)
    env: dict[str, str] = found["environmentVariables"]
    return env


def execution_statements(stack: Stack) -> list[dict[str, Any]]:
    document = stack.clients.iam.get_role_policy(
        RoleName=f"{stack.prefix}-runtime-{REGION}", PolicyName="permissions"
    )["PolicyDocument"]
    found: list[dict[str, Any]] = document["Statement"]
    return found


def dsql_calls(stack: Stack) -> list[str]:
    return [c.name for c in stack.calls if c.service == "dsql"]


def test_up_makes_a_protected_cluster_for_the_runtime(stack: Stack, slow_dsql: None) -> None:
    outputs = stack.up()

    (cluster,) = clusters(stack)
    cluster_id = cluster["identifier"]
    assert cluster["status"] == "ACTIVE"
    assert cluster["deletionProtectionEnabled"] is True
    assert cluster["tags"] == {TAG_KEY: stack.prefix, "Name": stack.prefix}
    (created,) = stack.params_of("CreateCluster")
    assert created == {
        "deletionProtectionEnabled": True,
        "tags": {TAG_KEY: stack.prefix, "Name": stack.prefix},
    }
    assert f"✓ Aurora DSQL cluster {cluster_id} (created: deletion protection on)" in (
        stack.printed
    )
    assert any(
        line.startswith(f"… Aurora DSQL cluster {cluster_id}: CREATING (") for line in stack.printed
    )

    endpoint = f"{cluster_id}.dsql.{REGION}.on.aws"
    assert outputs.database_endpoint == endpoint
    written = json.loads((stack.site.parent / "outputs.json").read_text())
    assert written["database_endpoint"] == endpoint
    env = runtime_env(stack, outputs.runtime_id)
    assert env["DATABASE_URL"] == f"postgresql://admin@{endpoint}/postgres"
    assert env["DATABASE_IAM_AUTH"] == "dsql"
    grants = [s for s in execution_statements(stack) if "dsql" in json.dumps(s["Action"])]
    assert grants == [
        {
            "Sid": "ConnectDatabase",
            "Effect": "Allow",
            "Action": "dsql:DbConnectAdmin",
            "Resource": f"arn:aws:dsql:{REGION}:{ACCOUNT}:cluster/{cluster_id}",
        }
    ]
    assert cluster["arn"] == grants[0]["Resource"]


def test_up_twice_makes_no_second_cluster(stack: Stack) -> None:
    first = stack.up()

    second = stack.up()

    assert [c for c in stack.changing_calls() if c.startswith("dsql:")] == []
    assert second.database_endpoint == first.database_endpoint
    assert len(clusters(stack)) == 1


def test_up_protects_the_cluster_again(stack: Stack) -> None:
    stack.up()
    (cluster,) = clusters(stack)
    stack.clients.dsql.update_cluster(
        identifier=cluster["identifier"], deletionProtectionEnabled=False
    )

    stack.up()

    assert stack.changing_calls() == ["dsql:UpdateCluster"]
    assert stack.params_of("UpdateCluster") == [
        {"identifier": cluster["identifier"], "deletionProtectionEnabled": True}
    ]
    assert clusters(stack)[0]["deletionProtectionEnabled"] is True


def test_down_keeps_the_cluster_and_delete_data_removes_it(stack: Stack, slow_dsql: None) -> None:
    stack.up()
    (cluster,) = clusters(stack)
    what = f"Aurora DSQL cluster {cluster['identifier']}"

    stack.down()

    assert not [c for c in stack.changing_calls() if c.startswith("dsql:")]
    assert f"- {what} (kept: every user's data is there; add --delete-data to delete it)" in (
        stack.printed
    )
    (kept,) = clusters(stack)
    assert kept["deletionProtectionEnabled"] is True

    stack.down(delete_data=True)

    assert [c for c in stack.changing_calls() if c.startswith("dsql:")] == [
        "dsql:UpdateCluster",
        "dsql:DeleteCluster",
    ]
    assert stack.params_of("UpdateCluster") == [
        {"identifier": cluster["identifier"], "deletionProtectionEnabled": False}
    ]
    assert any(line.startswith(f"… {what} deletion: DELETING (") for line in stack.printed)
    assert f"✓ {what} (deleted)" in stack.printed
    assert clusters(stack) == []
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        stack.clients.dsql.get_cluster(identifier=cluster["identifier"])


def test_a_given_dsql_url_is_used_and_never_touched(stack: Stack) -> None:
    outputs = stack.up(DEPLOY_DATABASE_URL=GIVEN_DSQL)

    assert dsql_calls(stack) == []
    assert clusters(stack) == []
    env = runtime_env(stack, outputs.runtime_id)
    assert env["DATABASE_URL"] == GIVEN_DSQL
    assert env["DATABASE_IAM_AUTH"] == "dsql"
    assert outputs.database_endpoint == f"{GIVEN_ID}.dsql.{REGION}.on.aws"
    (grant,) = [s for s in execution_statements(stack) if s.get("Sid") == "ConnectDatabase"]
    assert grant["Action"] == "dsql:DbConnectAdmin"
    assert grant["Resource"] == f"arn:aws:dsql:{REGION}:{ACCOUNT}:cluster/{GIVEN_ID}"

    stack.up(DEPLOY_DATABASE_URL=GIVEN_DSQL)
    assert stack.changing_calls() == []

    ctx = stack.context(DEPLOY_DATABASE_URL=GIVEN_DSQL)
    plan.status(ctx)
    shown = ctx.report.out.getvalue()  # type: ignore[attr-defined]
    assert f"• database {GIVEN_ID}.dsql.{REGION}.on.aws: given (DEPLOY_DATABASE_URL)" in shown

    stack.down(delete_data=True, DEPLOY_DATABASE_URL=GIVEN_DSQL)
    assert dsql_calls(stack) == []
    assert f"- database {GIVEN_ID}.dsql.{REGION}.on.aws (kept: given: DEPLOY_DATABASE_URL)" in (
        stack.printed
    )


def test_a_given_dsql_url_with_another_role_gets_db_connect(stack: Stack) -> None:
    stack.up(DEPLOY_DATABASE_URL=f"postgresql://app@{GIVEN_ID}.dsql.{REGION}.on.aws/postgres")

    (grant,) = [s for s in execution_statements(stack) if s.get("Sid") == "ConnectDatabase"]
    assert grant["Action"] == "dsql:DbConnect"
    assert dsql_calls(stack) == []


def test_a_given_postgresql_url_without_iam(stack: Stack) -> None:
    url = "postgresql://agent@db.internal.example:5432/agentweb?sslmode=require"
    outputs = stack.up(DEPLOY_DATABASE_URL=url)

    assert dsql_calls(stack) == []
    env = runtime_env(stack, outputs.runtime_id)
    assert (env["DATABASE_URL"], env["DATABASE_IAM_AUTH"]) == (url, "off")
    assert outputs.database_endpoint == "db.internal.example"
    assert not [s for s in execution_statements(stack) if "dsql" in json.dumps(s["Action"])]


def test_status_shows_the_cluster(stack: Stack) -> None:
    ctx = stack.context()
    plan.status(ctx)
    shown = ctx.report.out.getvalue()  # type: ignore[attr-defined]
    assert f"• Aurora DSQL cluster tagged {TAG_KEY}={stack.prefix}: absent" in shown

    outputs = stack.up()
    ctx = stack.context()
    stack.calls.clear()
    plan.status(ctx)
    shown = ctx.report.out.getvalue()  # type: ignore[attr-defined]
    (cluster,) = clusters(stack)
    assert (
        f"• Aurora DSQL cluster {cluster['identifier']}: ACTIVE, {outputs.database_endpoint}, "
        "deletion protection on"
    ) in shown
    assert stack.changing_calls() == []


def test_two_tagged_clusters_stop_the_deploy(stack: Stack) -> None:
    dsql = stack.clients.dsql
    made = [
        dsql.create_cluster(deletionProtectionEnabled=False, tags={TAG_KEY: stack.prefix})
        for _ in range(2)
    ]
    try:
        with pytest.raises(DeployError, match="several Aurora DSQL clusters are tagged"):
            stack.up()
    finally:
        for cluster in made:
            dsql.delete_cluster(identifier=cluster["identifier"])


def test_the_database_url_carries_no_secret() -> None:
    base = {"AWS_REGION": REGION}
    with pytest.raises(ConfigError) as raised:
        load_settings({**base, "DEPLOY_DATABASE_URL": "postgresql://app:hunter2@db.example/app"})
    assert "holds a password" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ConfigError, match="holds a password"):
        load_settings({**base, "DEPLOY_DATABASE_URL": "postgresql://db.example/app?password=x"})
    with pytest.raises(ConfigError, match=r"a postgresql:// URL"):
        load_settings({**base, "DEPLOY_DATABASE_URL": "sqlite:////data/app.db"})
    with pytest.raises(ConfigError, match="names no host"):
        load_settings({**base, "DEPLOY_DATABASE_URL": "postgresql:///app"})
    settings = load_settings({**base, "DEPLOY_DATABASE_URL": GIVEN_DSQL})
    assert settings.database_url == GIVEN_DSQL and not settings.manages_database
    assert load_settings(base).manages_database


def test_runtime_env_cannot_set_the_database(tmp_path: Any) -> None:
    file = tmp_path / "deploy.toml"
    file.write_text('[runtime_env]\nDATABASE_URL = "postgresql://x@y/z"\n')
    with pytest.raises(ConfigError, match="DATABASE_URL is set by the deploy"):
        load_settings({"AWS_REGION": REGION}, file)


def test_endpoints_are_what_the_app_recognises() -> None:
    """The URL the runtime gets is one app/db/engine.py signs DSQL tokens for, in the region
    the endpoint names."""
    from app.db.engine import dsql_region, dsql_url, is_dsql_host

    host = database.endpoint("a1b2c3d4e5f6g7h8i9j0k1l2m3", "eu-central-1")
    assert is_dsql_host(host) and database.DSQL_HOST.match(host)
    assert dsql_region(host) == "eu-central-1"
    parsed = dsql_url(database.url(host))
    assert (parsed.username, parsed.host, parsed.database) == ("admin", host, "postgres")
    assert parsed.password is None
    for other in ("db.example.com", f"{GIVEN_ID}.eu-west-1.on.aws"):
        assert not is_dsql_host(other) and not database.DSQL_HOST.match(other)
