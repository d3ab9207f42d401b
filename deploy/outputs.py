"""The outputs file: what the static site's build and people need to reach the deployment
(the runtime's WebSocket URL, Cognito ids, the site URL, ...), as flat JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class Outputs:
    region: str
    account: str
    bucket: str | None = None
    database_endpoint: str | None = None
    repository_uri: str | None = None
    image: str | None = None
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    cognito_discovery_url: str | None = None
    cognito_domain_url: str | None = None
    execution_role_arn: str | None = None
    user_role_arn: str | None = None
    runtime_id: str | None = None
    runtime_arn: str | None = None
    websocket_url: str | None = None
    invocations_url: str | None = None
    github_provider: str | None = None
    github_callback_url: str | None = None
    github_return_url: str | None = None
    amplify_app_id: str | None = None
    site_url: str | None = None

    def site_env(self) -> dict[str, str]:
        """The variables the static export is built with (app/static_site/plugin.py): the
        page's socket URL and Cognito client are baked into it."""
        if not (self.websocket_url and self.cognito_client_id):
            raise ValueError("the outputs have no runtime or Cognito client yet: run `up` first")
        return {
            "AGENTCORE_WS_URL": self.websocket_url,
            "COGNITO_REGION": self.region,
            "COGNITO_CLIENT_ID": self.cognito_client_id,
        }

    @classmethod
    def read(cls, path: Path) -> Outputs:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(path.read_text()).items() if k in known})

    def write(self, path: Path) -> None:
        """Written whole to a temporary file first, so a reader never sees half of it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(asdict(self), indent=2) + "\n")
        scratch.replace(path)
