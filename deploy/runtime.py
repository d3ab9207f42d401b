"""AgentCore runtimes (the app's and the probe's): created or updated to the wanted
configuration, then waited for until READY; deleted with their log groups.

Inbound auth is a JWT authorizer on the Cognito pool: AgentCore checks the access token's
signature, issuer and `client_id` before anything reaches the container, and passes the
`Authorization` header on (the container verifies it again and binds the session to the user).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import code, contains, not_found
from deploy.cognito import discovery_url
from deploy.context import Context, DeployError
from deploy.names import TAG_KEY

FAILED = ("CREATE_FAILED", "UPDATE_FAILED", "DELETE_FAILED")
ROLE_RETRIES = 12  # IAM takes a few seconds before AgentCore may assume a new role
EXACT = ("environmentVariables", "requestHeaderConfiguration")  # removals must count too


def configuration(
    ctx: Context,
    *,
    image: str,
    role_arn: str,
    pool_id: str,
    client_id: str,
    environment: dict[str, str],
    lifecycle: tuple[int, int],
) -> dict[str, Any]:
    """CreateAgentRuntime's parameters (less name and tags), also compared on each `up`."""
    return {
        "description": f"Agent Web ({ctx.names.prefix}), made by python -m deploy",
        "agentRuntimeArtifact": {"containerConfiguration": {"containerUri": image}},
        "roleArn": role_arn,
        "networkConfiguration": {"networkMode": "PUBLIC"},
        "protocolConfiguration": {"serverProtocol": "HTTP"},
        "authorizerConfiguration": {
            "customJWTAuthorizer": {
                "discoveryUrl": discovery_url(ctx.settings.region, pool_id),
                "allowedClients": [client_id],
            }
        },
        "requestHeaderConfiguration": {
            "requestHeaderAllowlist": list(ctx.settings.request_headers)
        },
        "lifecycleConfiguration": {
            "idleRuntimeSessionTimeout": lifecycle[0],
            "maxLifetime": lifecycle[1],
        },
        "environmentVariables": environment,
    }


def ensure(ctx: Context, name: str, wanted: dict[str, Any]) -> dict[str, Any]:
    """The runtime (GetAgentRuntime's answer) once READY."""
    runtimes = ctx.clients.runtimes
    what = f"AgentCore runtime {name}"
    found = find(ctx, name)
    if found is None:
        answer = _with_new_role(
            ctx,
            lambda: runtimes.create_agent_runtime(
                agentRuntimeName=name, tags=ctx.names.tags, **wanted
            ),
        )
        runtime_id = str(answer["agentRuntimeId"])
        ctx.report.created(what)
    else:
        runtime_id = str(found["agentRuntimeId"])
        current = runtimes.get_agent_runtime(agentRuntimeId=runtime_id)
        differs = [key for key, value in wanted.items() if not _same(key, current.get(key), value)]
        if differs:
            _with_new_role(
                ctx,
                lambda: runtimes.update_agent_runtime(agentRuntimeId=runtime_id, **wanted),
            )
            ctx.report.updated(what, ", ".join(differs))
        else:
            ctx.report.exists(what)
    return wait_ready(ctx, name, runtime_id)


def wait_ready(ctx: Context, name: str, runtime_id: str) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    def check() -> tuple[bool, str]:
        latest.update(ctx.clients.runtimes.get_agent_runtime(agentRuntimeId=runtime_id))
        state = str(latest["status"])
        if state in FAILED:
            reason = latest.get("failureReason", "no reason given")
            raise DeployError(f"AgentCore runtime {name}: {state}: {reason}")
        return state == "READY", state

    ctx.wait(f"AgentCore runtime {name}", check)
    return latest


def find(ctx: Context, name: str) -> dict[str, Any] | None:
    runtimes = ctx.clients.runtimes
    token: str | None = None
    while True:
        page = runtimes.list_agent_runtimes(
            maxResults=100, **({"nextToken": token} if token else {})
        )
        for runtime in page["agentRuntimes"]:
            if runtime["agentRuntimeName"] == name:
                found: dict[str, Any] = runtime
                return found
        token = page.get("nextToken")
        if not token:
            return None


def remove(ctx: Context, name: str) -> str | None:
    """Delete the runtime (waiting until it is gone) and its log groups; returns its id."""
    runtimes = ctx.clients.runtimes
    what = f"AgentCore runtime {name}"
    found = find(ctx, name)
    if found is None:
        ctx.report.absent(what)
    else:
        arn, runtime_id = found["agentRuntimeArn"], str(found["agentRuntimeId"])
        tags = runtimes.list_tags_for_resource(resourceArn=arn).get("tags", {})
        if tags.get(TAG_KEY) != ctx.names.prefix:
            ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
            return None
        runtimes.delete_agent_runtime(agentRuntimeId=runtime_id)
        ctx.wait(what + " deletion", lambda: _gone(ctx, runtime_id))
        ctx.report.deleted(what)
    remove_logs(ctx, name)
    return None if found is None else str(found["agentRuntimeId"])


def remove_logs(ctx: Context, name: str) -> None:
    """AgentCore makes a runtime's log groups itself; they stay unless deleted here."""
    logs, prefix = ctx.clients.logs, ctx.names.log_group_prefix(name)
    groups = [
        group["logGroupName"]
        for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=prefix)
        for group in page["logGroups"]
    ]
    for group in groups:
        logs.delete_log_group(logGroupName=group)
        ctx.report.deleted(f"log group {group}")
    if not groups:
        ctx.report.absent(f"log groups {prefix}*")


def status(ctx: Context, name: str) -> None:
    found = find(ctx, name)
    what = f"AgentCore runtime {name}"
    if found is None:
        ctx.report.state(what, "absent")
        return
    ctx.report.state(what, f"{found['status']}, version {found['agentRuntimeVersion']}")


def _same(key: str, current: Any, wanted: Any) -> bool:
    if key in EXACT:
        return bool((current or {}) == wanted)
    return contains(current, wanted)


def _gone(ctx: Context, runtime_id: str) -> tuple[bool, str]:
    try:
        answer = ctx.clients.runtimes.get_agent_runtime(agentRuntimeId=runtime_id)
    except ClientError as error:
        if not_found(error):
            return True, "deleted"
        raise
    return False, str(answer["status"])


def _with_new_role(ctx: Context, call: Any) -> dict[str, Any]:
    """Retry while AgentCore cannot yet assume a role IAM just created."""
    for attempt in range(ROLE_RETRIES):
        try:
            answer: dict[str, Any] = call()
            return answer
        except ClientError as error:
            message = str(error).lower()
            fresh_role = code(error) in ("ValidationException", "AccessDeniedException")
            if not (fresh_role and "role" in message) or attempt == ROLE_RETRIES - 1:
                raise
            ctx.report.waiting("IAM role", "not yet usable by AgentCore", (attempt + 1) * 5)
            ctx.sleep(5)
    raise AssertionError("unreachable")
