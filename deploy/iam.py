"""IAM roles with one inline policy each (it goes with the role), created or brought back to
the documents in `deploy.policy`."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import code, not_found, same_json
from deploy.context import Context
from deploy.names import TAG_KEY

POLICY_NAME = "permissions"
PRINCIPAL_RETRIES = 10


def ensure_role(ctx: Context, name: str, trust: dict[str, Any], permissions: dict[str, Any]) -> str:
    """The role's ARN; trust and permissions set to exactly these documents."""
    iam = ctx.clients.iam
    what = f"IAM role {name}"
    role = find(ctx, name)
    if role is None:
        role = _once_principal_exists(
            ctx,
            lambda: iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"Agent Web ({ctx.names.prefix}), made by python -m deploy",
                Tags=[{"Key": k, "Value": v} for k, v in ctx.names.tags.items()],
            )["Role"],
        )
        ctx.report.created(what)
    elif not same_json(role["AssumeRolePolicyDocument"], trust):
        _once_principal_exists(
            ctx,
            lambda: iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust)),
        )
        ctx.report.updated(what, "trust policy")
    else:
        ctx.report.exists(what)
    current = policy(ctx, name)
    if current is None or not same_json(current, permissions):
        iam.put_role_policy(
            RoleName=name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(permissions)
        )
        if current is None:
            ctx.report.created(f"{what} permissions")
        else:
            ctx.report.updated(f"{what} permissions", "policy document")
    else:
        ctx.report.exists(f"{what} permissions")
    return str(role["Arn"])


def _once_principal_exists(ctx: Context, call: Callable[[], Any]) -> Any:
    """A trust policy naming a role created seconds ago can be refused ("Invalid principal")
    until IAM has spread the new role; wait a little and try again."""
    for attempt in range(PRINCIPAL_RETRIES):
        try:
            return call()
        except ClientError as error:
            fresh = code(error) == "MalformedPolicyDocument" and "principal" in str(error).lower()
            if not fresh or attempt == PRINCIPAL_RETRIES - 1:
                raise
            ctx.report.waiting("IAM", "a new role is not yet valid as a principal", attempt * 3)
            ctx.sleep(3)
    raise AssertionError("unreachable")


def find(ctx: Context, name: str) -> dict[str, Any] | None:
    try:
        role: dict[str, Any] = ctx.clients.iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if not_found(error):
            return None
        raise
    return role


def policy(ctx: Context, name: str) -> Any:
    """The role's inline policy document as IAM has it (None when missing)."""
    try:
        return ctx.clients.iam.get_role_policy(RoleName=name, PolicyName=POLICY_NAME)[
            "PolicyDocument"
        ]
    except ClientError as error:
        if not_found(error):
            return None
        raise


def remove_role(ctx: Context, name: str) -> None:
    iam = ctx.clients.iam
    what = f"IAM role {name}"
    if find(ctx, name) is None:
        ctx.report.absent(what)
        return
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name).get("Tags", [])}
    if tags.get(TAG_KEY) != ctx.names.prefix:
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
        return
    for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
        for inline in page["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=inline)
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        for attached in page["AttachedPolicies"]:
            iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=name)
    ctx.report.deleted(what)


def status(ctx: Context, name: str) -> None:
    role = find(ctx, name)
    ctx.report.state(f"IAM role {name}", "absent" if role is None else str(role["Arn"]))
