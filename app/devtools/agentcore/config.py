"""The emulator's settings, with AgentCore Runtime's defaults, and the contract's names."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
# Query parameters with this prefix reach the container as lower-cased headers.
CUSTOM_PREFIX = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-"
BEARER_PROTOCOL = "base64UrlBearerAuthorization"
SESSION_ID_MIN, SESSION_ID_MAX = 33, 256
DEFAULT_RUNTIME_ARN = "arn:aws:bedrock-agentcore:us-east-1:000000000000:runtime/local-emulator"


def default_container_command() -> tuple[str, ...]:
    """The app's own AgentCore entry point, run by this interpreter."""
    return (sys.executable, "-m", "app.container")


@dataclass(frozen=True, kw_only=True)
class EmulatorSettings:
    """Everything adjustable on a real runtime, plus the emulator's own pacing.

    Durations are seconds. Without `discovery_url` no token is checked (a real runtime would
    then demand SigV4, which the emulator does not do); with it, `allowed_clients` must name at
    least one app client, as AgentCore's customJWTAuthorizer requires.
    """

    host: str = "127.0.0.1"
    port: int = 8090
    container_command: tuple[str, ...] = field(default_factory=default_container_command)
    container_env: Mapping[str, str] = field(default_factory=dict)
    discovery_url: str | None = None
    allowed_clients: tuple[str, ...] = ()
    idle_timeout_s: float = 900
    max_lifetime_s: float = 28_800
    connection_limit_s: float = 3_600
    frame_limit: int = 32_768
    # UNKNOWN on AWS: do query parameters other than AgentCore's reach the container?
    forward_query: bool = False
    runtime_arn: str = DEFAULT_RUNTIME_ARN
    start_timeout_s: float = 60
    ping_interval_s: float = 2
    stop_grace_s: float = 5

    def __post_init__(self) -> None:
        if not self.container_command:
            raise ValueError("container_command must not be empty")
        if self.discovery_url and not self.allowed_clients:
            raise ValueError("a JWT authorizer needs at least one allowed client id")
        durations = {
            "idle_timeout_s": self.idle_timeout_s,
            "max_lifetime_s": self.max_lifetime_s,
            "connection_limit_s": self.connection_limit_s,
            "start_timeout_s": self.start_timeout_s,
            "ping_interval_s": self.ping_interval_s,
        }
        for name, value in durations.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.frame_limit <= 0:
            raise ValueError(f"frame_limit must be positive, not {self.frame_limit}")
