"""A local AWS Bedrock AgentCore Runtime that enforces the runtime contract.

It stands in for the AgentCore data plane in front of "containers" that are local processes,
one per runtime session id, so the app's AgentCore container can be developed and tested
without an AWS account and cannot come to rely on anything the real service would not give it:
only `/invocations`, `/ws` and `/ping` reach a container; the JWT authorizer, header allowlist,
custom headers, idle timeout, lifetime, frame and connection limits apply as on AWS. Where
AWS's behaviour is UNKNOWN (docs/agentcore.md), a setting lets tests try both answers
(`forward_query`). What it does not do: SigV4 callers, ping/pong frames as activity (only data
messages reset the idle timer), CPU and memory limits.

Run standalone: `python -m app.devtools.agentcore --help`; in tests, `AgentCoreEmulator`.
"""

from app.devtools.agentcore.config import (
    BEARER_PROTOCOL,
    CUSTOM_PREFIX,
    DEFAULT_RUNTIME_ARN,
    SESSION_HEADER,
    EmulatorSettings,
)
from app.devtools.agentcore.containers import ContainerStart
from app.devtools.agentcore.proxy import EmulatorApp
from app.devtools.agentcore.server import AgentCoreEmulator

__all__ = [
    "BEARER_PROTOCOL",
    "CUSTOM_PREFIX",
    "DEFAULT_RUNTIME_ARN",
    "SESSION_HEADER",
    "AgentCoreEmulator",
    "ContainerStart",
    "EmulatorApp",
    "EmulatorSettings",
]
