"""The roles' policies, read back from IAM after `up`: least privilege, with every `*` either
required by AWS or inside this deployment's own names, each one justified here."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from app.workspace.bucket import prefix_policy, user_prefix
from deploy import policy
from tests.deploy.conftest import ACCOUNT, REGION, Stack

# Actions AWS authorizes only on Resource "*" (they have no resource type).
STAR_ACTIONS = {
    "ecr:GetAuthorizationToken": "registry login; the pulls are limited to our repository",
    "xray:PutTraceSegments": "X-Ray defines no resource types",
    "xray:PutTelemetryRecords": "X-Ray defines no resource types",
    "xray:GetSamplingRules": "X-Ray defines no resource types",
    "xray:GetSamplingTargets": "X-Ray defines no resource types",
    "cloudwatch:PutMetricData": "no resource type; a cloudwatch:namespace condition narrows it",
}


def star_patterns(stack: Stack) -> dict[str, str]:
    """Resources with a `*` in them, each inside names this deployment owns."""
    runtime = stack.prefix.replace("-", "_")
    logs = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    return {
        rf"arn:aws:s3:::{stack.prefix}-{REGION}-{ACCOUNT}/user_data/\*": (
            "the users' prefix; the app's session policy narrows it to one user"
        ),
        rf"{logs}/aws/bedrock-agentcore/runtimes/{runtime}_?[a-z]*-\*(:log-stream:\*)?": (
            "AgentCore names log groups after the runtime's id, <name>-<suffix>, unknown before"
        ),
        rf"{logs}\*": "DescribeLogGroups is authorized on the account's list of groups",
        rf"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:workload-identity-directory/default/"
        rf"workload-identity/{runtime}-\*": "the runtime's workload identity is named after its id",
    }


def statements(document: Any) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def role_policy(stack: Stack, role: str) -> Any:
    return stack.clients.iam.get_role_policy(RoleName=role, PolicyName="permissions")[
        "PolicyDocument"
    ]


def test_policies_have_no_needless_wildcard(stack: Stack) -> None:
    stack.up()
    roles = [f"{stack.prefix}-runtime-{REGION}", f"{stack.prefix}-user-data-{REGION}"]
    patterns = star_patterns(stack)
    for role in roles:
        for statement in statements(role_policy(stack, role)):
            assert statement["Effect"] == "Allow"
            actions = listed(statement["Action"])
            assert not [a for a in actions if "*" in a], f"wildcard action in {statement}"
            for resource in listed(statement["Resource"]):
                if resource == "*":
                    unjustified = [a for a in actions if a not in STAR_ACTIONS]
                    assert not unjustified, f"{unjustified} on Resource * ({role})"
                elif "*" in resource:
                    assert any(re.fullmatch(p, resource) for p in patterns), resource


def test_metrics_are_limited_to_agentcore_namespace(stack: Stack) -> None:
    stack.up()
    (metrics,) = [
        s
        for s in statements(role_policy(stack, f"{stack.prefix}-runtime-{REGION}"))
        if "cloudwatch:PutMetricData" in listed(s["Action"])
    ]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "bedrock-agentcore"}}


def test_execution_role_reaches_only_its_own_things(stack: Stack) -> None:
    outputs = stack.up()
    document = role_policy(stack, f"{stack.prefix}-runtime-{REGION}")
    by_action = {
        action: listed(s["Resource"])
        for s in statements(document)
        for action in listed(s["Action"])
    }
    assert by_action["ecr:BatchGetImage"] == [
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{stack.prefix}"
    ]
    assert not [a for a in by_action if a.startswith("s3:")], "S3 only through the user role"
    assert by_action["sts:AssumeRole"] == [outputs.user_role_arn]
    assert by_action["sts:TagSession"] == [outputs.user_role_arn]
    profiles = [
        f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.anthropic.{model}"
        for model in ("claude-haiku-4-5-20251001-v1:0", "claude-sonnet-4-5-20250929-v1:0")
    ]
    models = [
        f"arn:aws:bedrock:{region}::foundation-model/anthropic.{model}"
        for model in ("claude-haiku-4-5-20251001-v1:0", "claude-sonnet-4-5-20250929-v1:0")
        for region in ("eu-central-1", "eu-west-1", "eu-west-3")
    ]
    assert sorted(by_action["bedrock:InvokeModel"]) == sorted(profiles + models)
    assert by_action["bedrock:InvokeModelWithResponseStream"] == by_action["bedrock:InvokeModel"]
    vault = f"arn:aws:bedrock-agentcore:{REGION}:{ACCOUNT}:token-vault/default"
    assert (
        f"{vault}/oauth2credentialprovider/{stack.prefix}-github"
        in by_action["bedrock-agentcore:GetResourceOauth2Token"]
    )
    assert (
        by_action["bedrock-agentcore:CompleteResourceTokenAuth"]
        == by_action["bedrock-agentcore:GetResourceOauth2Token"]
    )
    secret = stack.identity.providers[f"{stack.prefix}-github"]["clientSecretArn"]["secretArn"]
    assert by_action["secretsmanager:GetSecretValue"] == [secret]
    cluster_id = str(outputs.database_endpoint).split(".")[0]
    assert by_action["dsql:DbConnectAdmin"] == [
        f"arn:aws:dsql:{REGION}:{ACCOUNT}:cluster/{cluster_id}"
    ]
    assert "dsql:DbConnect" not in by_action


def test_trust_policies(stack: Stack) -> None:
    outputs = stack.up()
    iam = stack.clients.iam
    runtime = iam.get_role(RoleName=f"{stack.prefix}-runtime-{REGION}")["Role"]
    (trust,) = statements(runtime["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "bedrock-agentcore.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    user = iam.get_role(RoleName=f"{stack.prefix}-user-data-{REGION}")["Role"]
    (trust,) = statements(user["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"AWS": outputs.execution_role_arn}
    assert sorted(listed(trust["Action"])) == ["sts:AssumeRole", "sts:TagSession"]


def test_user_role_allows_everything_the_apps_session_policy_asks(stack: Stack) -> None:
    """AssumeRole's session policy can only narrow the role: each of the app's per-user
    statements must fit inside the role's own."""
    outputs = stack.up()
    granted = statements(role_policy(stack, f"{stack.prefix}-user-data-{REGION}"))
    session = prefix_policy(str(outputs.bucket), user_prefix("some-user-sub"))
    for wanted in session["Statement"]:
        for action in listed(wanted["Action"]):
            assert any(
                action in listed(g["Action"])
                and fnmatch.fnmatchcase(wanted["Resource"], listed(g["Resource"])[0])
                for g in granted
            ), action
    (listing,) = [g for g in granted if "s3:ListBucket" in listed(g["Action"])]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["user_data/*"]}}


def test_repository_arn_of_an_image() -> None:
    assert (
        policy.repository_arn("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:app-1")
        == "arn:aws:ecr:eu-west-1:123456789012:repository/team/app"
    )
    assert policy.repository_arn(
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app@sha256:abc"
    ).endswith(":repository/app")
