"""Every resource's name, derived from the prefix, region and account in one place, so `up`,
`status`, `down` and `probe` always look for the same things."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

TAG_KEY = "agent-web:deployment"  # on everything `up` creates; `down` checks it before deleting


@dataclass(frozen=True)
class Names:
    prefix: str
    region: str
    account: str
    cognito_domain_prefix: str | None = None

    @property
    def tags(self) -> dict[str, str]:
        return {TAG_KEY: self.prefix}

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        return "aws-us-gov" if self.region.startswith("us-gov-") else "aws"

    @property
    def bucket(self) -> str:
        return f"{self.prefix}-{self.region}-{self.account}"

    @property
    def repository(self) -> str:
        return self.prefix

    @property
    def registry(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com"

    @property
    def runtime(self) -> str:
        """AgentCore runtime names allow letters, digits and underscores only."""
        return self.prefix.replace("-", "_")

    @property
    def probe_runtime(self) -> str:
        return f"{self.runtime}_probe"

    @property
    def execution_role(self) -> str:
        """IAM is global: the region in the name lets one account deploy to several."""
        return f"{self.prefix}-runtime-{self.region}"

    @property
    def user_role(self) -> str:
        return f"{self.prefix}-user-data-{self.region}"

    @property
    def probe_role(self) -> str:
        return f"{self.prefix}-probe-{self.region}"

    @property
    def user_pool(self) -> str:
        return f"{self.prefix}-users"

    @property
    def user_pool_client(self) -> str:
        return f"{self.prefix}-web"

    @property
    def cognito_domain(self) -> str:
        """Cognito domain prefixes are unique per region across all accounts."""
        return self.cognito_domain_prefix or f"{self.prefix}-{self.account}"

    @property
    def credential_provider(self) -> str:
        return f"{self.prefix}-github"

    @property
    def amplify_app(self) -> str:
        return self.prefix

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"

    def log_group_prefix(self, runtime: str) -> str:
        """AgentCore names a runtime's log groups after its id, which is `<name>-<suffix>`."""
        return f"/aws/bedrock-agentcore/runtimes/{runtime}-"


def runtime_urls(region: str, runtime_arn: str) -> tuple[str, str]:
    """The page's WebSocket URL and the HTTP invocations URL of a runtime."""
    base = f"bedrock-agentcore.{region}.amazonaws.com/runtimes/{quote(runtime_arn, safe='')}"
    return f"wss://{base}/ws", f"https://{base}/invocations?qualifier=DEFAULT"
