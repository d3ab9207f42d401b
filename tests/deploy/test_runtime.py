"""The runtime step's waiting: a role IAM has not spread yet is retried, a failed runtime
stops the deploy with AgentCore's reason."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from deploy import runtime
from deploy.context import DeployError
from tests.deploy.conftest import Stack


def test_a_fresh_role_is_retried(stack: Stack) -> None:
    ctx = stack.context()
    slept: list[float] = []
    ctx.sleep = slept.append
    attempts: list[int] = []

    def create() -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) < 3:
            error = {"Code": "ValidationException", "Message": "Role validation failed"}
            raise ClientError({"Error": error}, "CreateAgentRuntime")
        return {"agentRuntimeId": "done"}

    assert runtime._with_new_role(ctx, create) == {"agentRuntimeId": "done"}
    assert len(attempts) == 3 and slept == [5, 5]


def test_other_refusals_are_not_retried(stack: Stack) -> None:
    ctx = stack.context()

    def create() -> dict[str, Any]:
        error = {"Code": "ValidationException", "Message": "containerUri is not valid"}
        raise ClientError({"Error": error}, "CreateAgentRuntime")

    with pytest.raises(ClientError, match="containerUri"):
        runtime._with_new_role(ctx, create)


def test_a_failed_runtime_stops_the_deploy(stack: Stack) -> None:
    from moto.bedrockagentcorecontrol.models import bedrockagentcorecontrol_backends

    outputs = stack.up()
    backend = bedrockagentcorecontrol_backends["123456789012"]["eu-west-1"]
    backend.agent_runtimes[str(outputs.runtime_id)].status = "UPDATE_FAILED"

    with pytest.raises(DeployError, match=f"AgentCore runtime {stack.prefix}: UPDATE_FAILED"):
        stack.up()
