"""`down` removes what `up` made, every service checked afterwards; the bucket and the image
repository stay unless `--delete-data`; what is not tagged as ours is never deleted."""

from __future__ import annotations

import json

from deploy import database, plan
from tests.deploy.conftest import ACCOUNT, REGION, Stack


def _leftovers(stack: Stack) -> dict[str, list[str]]:
    """Everything in the account whose name carries the deployment's prefix, per service."""
    c, prefix = stack.clients, stack.prefix
    runtime = prefix.replace("-", "_")
    return {
        "ecr": [
            r["repositoryName"]
            for r in c.ecr.describe_repositories()["repositories"]
            if r["repositoryName"].startswith(prefix)
        ],
        "s3": [b["Name"] for b in c.s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix)],
        "iam": [
            r["RoleName"]
            for page in c.iam.get_paginator("list_roles").paginate()
            for r in page["Roles"]
            if r["RoleName"].startswith(prefix)
        ],
        "cognito pools": [
            p["Name"]
            for p in c.cognito.list_user_pools(MaxResults=60)["UserPools"]
            if p["Name"].startswith(prefix)
        ],
        "cognito domain": [
            d
            for d in [f"{prefix}-{ACCOUNT}"]
            if c.cognito.describe_user_pool_domain(Domain=d)["DomainDescription"]
        ],
        "logs": [
            g["logGroupName"]
            for g in c.logs.describe_log_groups(
                logGroupNamePrefix=f"/aws/bedrock-agentcore/runtimes/{runtime}"
            )["logGroups"]
        ],
        "agentcore runtimes": [
            r["agentRuntimeName"]
            for r in c.runtimes.list_agent_runtimes()["agentRuntimes"]
            if r["agentRuntimeName"].startswith(runtime)
        ],
        "workload identities": sorted(stack.identity.identities),
        "credential providers": sorted(stack.identity.providers),
        "amplify": [a["name"] for a in stack.amplify.apps.values()],
        "dsql clusters": [c["identifier"] for c in database.find(stack.context())],
    }


def _agentcore_writes_logs(stack: Stack, runtime_id: str) -> str:
    """AgentCore makes a runtime's log group itself when the runtime first runs."""
    name = f"/aws/bedrock-agentcore/runtimes/{stack.prefix}-{runtime_id[-10:]}-DEFAULT"
    stack.clients.logs.create_log_group(logGroupName=name)
    return name


def test_up_then_down_with_data_leaves_nothing(stack: Stack) -> None:
    outputs = stack.up()
    group = _agentcore_writes_logs(stack, str(outputs.runtime_id))
    assert all(
        _leftovers(stack)[k] for k in ("ecr", "s3", "iam", "logs", "amplify", "dsql clusters")
    )

    stack.down(delete_data=True)

    assert _leftovers(stack) == {key: [] for key in _leftovers(stack)}
    assert f"✓ log group {group} (deleted)" in stack.printed
    assert not (stack.site.parent / "outputs.json").exists()


def test_down_keeps_the_bucket_and_repository_without_delete_data(stack: Stack) -> None:
    stack.up()

    stack.down()

    left = _leftovers(stack)
    assert left["s3"] == [f"{stack.prefix}-{REGION}-{ACCOUNT}"]
    assert left["ecr"] == [stack.prefix]
    assert [key for key, names in left.items() if names] == ["ecr", "s3", "dsql clusters"]
    assert any("(kept: the users' workspaces stay" in line for line in stack.printed)
    assert any("(kept: every user's data is there" in line for line in stack.printed)
    versioning = stack.clients.s3.get_bucket_versioning(Bucket=left["s3"][0])
    assert versioning["Status"] == "Enabled"


def test_down_twice_and_on_nothing_is_fine(stack: Stack) -> None:
    stack.down(delete_data=True)
    assert stack.printed[-1] == "= Nothing changed: everything was already in place."
    assert stack.changing_calls() == []


def test_down_leaves_alone_what_it_did_not_make(stack: Stack) -> None:
    iam = stack.clients.iam
    role = f"{stack.prefix}-user-data-{REGION}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({"Statement": []}))

    stack.down(delete_data=True)

    assert iam.get_role(RoleName=role)["Role"]["RoleName"] == role
    assert any(line.startswith(f"- IAM role {role} (kept: not tagged") for line in stack.printed)
    iam.delete_role(RoleName=role)


def test_status_shows_each_resource(stack: Stack) -> None:
    stack.up()
    ctx = stack.context()
    stack.calls.clear()
    plan.status(ctx)
    shown = ctx.report.out.getvalue()  # type: ignore[attr-defined]

    for what in (
        f"ECR repository {stack.prefix}: {ACCOUNT}.dkr.ecr.",
        f"S3 bucket {stack.prefix}-{REGION}-{ACCOUNT}: ready",
        "Aurora DSQL cluster ",
        f"Cognito user pool {stack.prefix}-users: client ",
        f"Cognito domain {stack.prefix}-{ACCOUNT}: ACTIVE",
        f"GitHub credential provider {stack.prefix}-github: READY",
        f"IAM role {stack.prefix}-runtime-{REGION}: arn:aws:iam::",
        f"AgentCore runtime {stack.prefix}: READY, version 1",
        f"Amplify app {stack.prefix}: https://main.",
        f"AgentCore runtime {stack.prefix}_probe: absent",
    ):
        assert f"• {what}" in shown, what
    assert stack.changing_calls() == []
