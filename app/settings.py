"""Configuration from environment variables, read once and validated at start-up.

Every mistake is collected and reported together, each with the variable's name, so a person
fixing a deployment sees all of them in one run instead of one per restart.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar, cast
from urllib.parse import urlsplit

from app.sandbox.policy import Entry, parse_allowlist
from app.workspace.sync import DEFAULT_EXCLUDES

AuthMode = Literal["local", "cognito"]
DemoMode = Literal["auto", "on", "off"]
DatabaseIamAuth = Literal["off", "dsql"]

# Variables the Claude Code CLI itself reads for model access. The model relay uses the
# credentials and endpoints among them; agents get only the model choices (see
# app.sandbox.environment.TUNABLE_VARS) and a token for their own session's relay.
MODEL_ENV_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_MODEL",
    "ANTHROPIC_SMALL_FAST_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "ANTHROPIC_BEDROCK_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
    "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_MAX_OUTPUT_TOKENS",
    "CLAUDE_CODE_MAX_RETRIES",
    "MAX_THINKING_TOKENS",
    "DISABLE_PROMPT_CACHING",
)
# The relay signs Bedrock requests with these (agents never see them).
BEDROCK_ENV_VARS = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)
CREDENTIAL_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "CLAUDE_CODE_USE_BEDROCK",
)
DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")


class SettingsError(Exception):
    """Raised with every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    auth_mode: AuthMode
    max_agents_per_user: int
    idle_timeout_s: float
    max_message_chars: int
    demo_model: bool
    demo_scenario: Path | None
    models: tuple[str, ...]
    default_model: str
    model_env: Mapping[str, str] = field(repr=False)
    secret_key: str | None = field(default=None, repr=False)
    cognito_region: str | None = None
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    cognito_jwks_url: str | None = None
    cognito_endpoint_url: str | None = None
    allowed_email_domains: tuple[str, ...] = ()
    sandbox: bool = True
    sandbox_uid_base: int = 200_000
    agent_niceness: int = 10  # agents (and terminals) yield the CPU to the app's own work
    agent_memory_mb: int = 4096  # what a user's agents may hold together (0: no limit)
    agent_max_processes: int = 1024  # how many tasks a user's agents may run (0: no limit)
    allowed_hosts: tuple[Entry, ...] = field(default_factory=lambda: parse_allowlist("default"))
    readonly_paths: tuple[Path, ...] = ()
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_provider_name: str | None = None  # AgentCore Identity's GitHub credential provider
    github_return_url: str | None = None  # the static site's page AgentCore returns to
    cluster_redis_url: str | None = field(default=None, repr=False)  # several instances
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_user_role_arn: str | None = None
    sync_excludes: tuple[str, ...] = ()
    database_iam_auth: DatabaseIamAuth = "off"
    user_monthly_budget_usd: float | None = None  # each user's default and ceiling, in USD

    @property
    def projects_dir(self) -> Path:
        return self.data_dir / "projects"

    @property
    def agent_homes_dir(self) -> Path:
        """Per-user homes for the CLI (its transcripts and settings live there)."""
        return self.data_dir / "homes"


T = TypeVar("T")


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build Settings from `environ`, raising SettingsError listing every mistake."""
    problems: list[str] = []

    def parse(name: str, default: T, convert: Callable[[str], T], rule: str) -> T:
        raw = environ.get(name, "").strip()
        if not raw:
            return default
        try:
            return convert(raw)
        except ValueError:
            problems.append(f"{name}={raw!r}: {rule}")
            return default

    data_dir = data_dir_of(environ)
    database_url = environ.get("DATABASE_URL", "").strip() or f"sqlite:///{data_dir / 'app.db'}"
    if not re.match(r"^(sqlite|postgresql(\+psycopg)?)://", database_url):
        problems.append("DATABASE_URL: must start with sqlite:// or postgresql://")
    iam_auth = cast(
        DatabaseIamAuth, parse("DATABASE_IAM_AUTH", "off", _choice("off", "dsql"), "off or dsql")
    )
    if iam_auth == "dsql" and database_url.startswith("sqlite"):
        problems.append(
            "DATABASE_IAM_AUTH=dsql needs a postgresql:// DATABASE_URL (the Aurora DSQL"
            " cluster's endpoint), not SQLite"
        )
    elif iam_auth == "dsql" and urlsplit(database_url).password is not None:
        problems.append("DATABASE_URL: no password with DATABASE_IAM_AUTH=dsql (tokens replace it)")
    auth_mode = cast(
        AuthMode, parse("AUTH_MODE", "local", _choice("local", "cognito"), "use local or cognito")
    )
    max_agents = parse("MAX_AGENTS_PER_USER", 3, _positive_int, "a whole number >= 1")
    idle = parse("AGENT_IDLE_TIMEOUT", 300.0, _positive_float, "seconds, a number > 0")
    max_chars = parse("MAX_MESSAGE_CHARS", 100_000, _positive_int, "a whole number >= 1")
    demo = cast(
        DemoMode, parse("DEMO_MODEL", "auto", _choice("auto", "on", "off"), "auto, on or off")
    )
    scenario = environ.get("DEMO_SCENARIO", "").strip()
    if scenario and not Path(scenario).is_file():
        problems.append(f"DEMO_SCENARIO={scenario!r}: no such file")
    models = tuple(m.strip() for m in environ.get("MODELS", "").split(",") if m.strip())
    model_env = agent_model_env(environ)
    has_credentials = any(environ.get(name, "").strip() for name in CREDENTIAL_VARS)
    if demo == "off" and not has_credentials:
        problems.append(
            "DEMO_MODEL=off but no model access is configured: set ANTHROPIC_API_KEY, "
            "ANTHROPIC_AUTH_TOKEN + ANTHROPIC_BASE_URL, or CLAUDE_CODE_USE_BEDROCK=1"
        )
    use_demo = demo == "on" or (demo == "auto" and not has_credentials)
    default_model = environ.get("ANTHROPIC_MODEL", "").strip() or (models or DEFAULT_MODELS)[0]
    secret_key = environ.get("APP_SECRET_KEY", "").strip() or None
    if secret_key is not None and len(secret_key) < 32:
        problems.append("APP_SECRET_KEY: at least 32 characters (or unset it to generate one)")
    cognito = {
        name: environ.get(name, "").strip() or None
        for name in ("COGNITO_REGION", "COGNITO_USER_POOL_ID", "COGNITO_CLIENT_ID")
    }
    if auth_mode == "cognito":
        problems += [
            f"{name}: required when AUTH_MODE=cognito" for name, v in cognito.items() if not v
        ]
    sandbox = parse("AGENT_SANDBOX", "on", _choice("on", "off"), "on or off") == "on"
    uid_base = parse("AGENT_UID_BASE", 200_000, _uid_base, "a whole number from 1000 to 4000000000")
    niceness = parse("AGENT_NICENESS", 10, _niceness, "a whole number from 0 to 19")
    memory_mb = parse("AGENT_MEMORY_MB", 4096, _limit(256), "0 (no limit) or a whole number >= 256")
    max_processes = parse(
        "AGENT_MAX_PROCESSES", 1024, _limit(64), "0 (no limit) or a whole number >= 64"
    )
    try:
        allowed_hosts = parse_allowlist(environ.get("AGENT_ALLOWED_HOSTS", "default"))
    except ValueError as error:
        problems.append(f"AGENT_ALLOWED_HOSTS: {error}")
        allowed_hosts = ()
    readonly_paths = tuple(
        Path(p.strip()) for p in environ.get("AGENT_READONLY_PATHS", "").split(":") if p.strip()
    )
    problems += [
        f"AGENT_READONLY_PATHS: {p} is not an absolute path"
        for p in readonly_paths
        if not p.is_absolute()
    ]
    # With Reflex's state in Redis, its server runs several worker processes: instances too.
    cluster = (
        environ.get("CLUSTER_REDIS_URL", "").strip()
        or environ.get("REFLEX_REDIS_URL", "").strip()
        or None
    )
    if cluster is not None and not re.match(r"^rediss?://", cluster):
        problems.append("CLUSTER_REDIS_URL: must start with redis:// or rediss://")
    bucket = environ.get("S3_BUCKET", "").strip() or None
    if bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
        problems.append(f"S3_BUCKET={bucket!r}: not a bucket name (3-63 of a-z 0-9 . -)")
    endpoint = environ.get("S3_ENDPOINT_URL", "").strip() or None
    if endpoint is not None and not re.match(r"^https?://", endpoint):
        problems.append("S3_ENDPOINT_URL: must start with http:// or https://")
    role = environ.get("S3_USER_ROLE_ARN", "").strip() or None
    if role is not None and not role.startswith("arn:"):
        problems.append("S3_USER_ROLE_ARN: an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    excludes: list[str] = []
    for item in environ.get("S3_SYNC_EXCLUDE", "default").split(","):
        excludes += list(DEFAULT_EXCLUDES) if item.strip() == "default" else [item.strip()]
    github_url = environ.get("GITHUB_URL", "").strip().rstrip("/") or "https://github.com"
    github_api_url = environ.get("GITHUB_API_URL", "").strip().rstrip("/") or (
        "https://api.github.com" if github_url == "https://github.com" else f"{github_url}/api/v3"
    )
    for name, url in (("GITHUB_URL", github_url), ("GITHUB_API_URL", github_api_url)):
        if not re.match(r"^https?://[^/\s]+", url):
            problems.append(f"{name}: must be an http(s) URL, such as https://github.example.com")
    github_client_id = environ.get("GITHUB_OAUTH_CLIENT_ID", "").strip() or None
    github_client_secret = environ.get("GITHUB_OAUTH_CLIENT_SECRET", "").strip() or None
    if bool(github_client_id) != bool(github_client_secret):
        problems.append(
            "GITHUB_OAUTH_CLIENT_ID and GITHUB_OAUTH_CLIENT_SECRET: set both (or neither)"
        )
    github_provider = environ.get("GITHUB_PROVIDER_NAME", "").strip() or None
    github_return = environ.get("GITHUB_RETURN_URL", "").strip() or None
    if bool(github_provider) != bool(github_return):
        problems.append("GITHUB_PROVIDER_NAME and GITHUB_RETURN_URL: set both (or neither)")
    if github_provider and not re.match(r"^[A-Za-z0-9_-]{1,128}$", github_provider):
        problems.append("GITHUB_PROVIDER_NAME: a credential provider name (1-128 of A-Za-z0-9_-)")
    if github_return and not re.match(r"^https?://[^/\s]+/\S*$", github_return):
        problems.append(
            "GITHUB_RETURN_URL: the static site's return page, such as "
            "https://main.example.amplifyapp.com/github/callback"
        )
    monthly_budget: float | None = parse(
        "USER_MONTHLY_BUDGET_USD", None, _positive_float, "US dollars, a number > 0"
    )
    if problems:
        raise SettingsError(problems)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        auth_mode=auth_mode,
        max_agents_per_user=max_agents,
        idle_timeout_s=idle,
        max_message_chars=max_chars,
        demo_model=use_demo,
        demo_scenario=Path(environ["DEMO_SCENARIO"]).resolve()
        if environ.get("DEMO_SCENARIO")
        else None,
        models=_with_default(models or DEFAULT_MODELS, default_model),
        default_model=default_model,
        model_env=model_env,
        secret_key=secret_key,
        cognito_region=cognito["COGNITO_REGION"],
        cognito_user_pool_id=cognito["COGNITO_USER_POOL_ID"],
        cognito_client_id=cognito["COGNITO_CLIENT_ID"],
        cognito_jwks_url=environ.get("COGNITO_JWKS_URL", "").strip() or None,
        cognito_endpoint_url=environ.get("COGNITO_ENDPOINT_URL", "").strip() or None,
        allowed_email_domains=tuple(
            d.strip().lower()
            for d in environ.get("ALLOWED_EMAIL_DOMAINS", "").split(",")
            if d.strip()
        ),
        sandbox=sandbox,
        sandbox_uid_base=uid_base,
        agent_niceness=niceness,
        agent_memory_mb=memory_mb,
        agent_max_processes=max_processes,
        allowed_hosts=allowed_hosts,
        readonly_paths=readonly_paths,
        github_url=github_url,
        github_api_url=github_api_url,
        github_client_id=github_client_id,
        github_client_secret=github_client_secret,
        github_provider_name=github_provider,
        github_return_url=github_return,
        cluster_redis_url=cluster,
        s3_bucket=bucket,
        s3_endpoint_url=endpoint,
        s3_region=(environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "").strip()
        or None,
        s3_user_role_arn=role,
        sync_excludes=tuple(e for e in excludes if e),
        database_iam_auth=iam_auth,
        user_monthly_budget_usd=monthly_budget,
    )


def data_dir_of(environ: Mapping[str, str]) -> Path:
    """DATA_DIR as an absolute path (default ./data)."""
    return Path(environ.get("DATA_DIR", "").strip() or "data").expanduser().resolve()


def reflex_states_dir(data_dir: Path) -> Path:
    """Where Reflex keeps each tab's state between events. The files are pickles, which run
    code when loaded: they live in the app's private data directory, never in the checkout."""
    return data_dir / "reflex-states"


def agent_model_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The model-access variables to hand to each agent process."""
    names: tuple[str, ...] = MODEL_ENV_VARS
    if environ.get("CLAUDE_CODE_USE_BEDROCK", "").strip() not in ("", "0", "false"):
        names += BEDROCK_ENV_VARS
    return {name: environ[name] for name in names if environ.get(name, "").strip()}


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings; the first call validates them."""
    return load_settings(os.environ)


def _with_default(models: tuple[str, ...], default: str) -> tuple[str, ...]:
    return models if default in models else (default, *models)


def _choice(*allowed: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(raw)
        return raw

    return convert


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError(raw)
    return value


def _uid_base(raw: str) -> int:
    value = int(raw)
    if not 1000 <= value <= 4_000_000_000:
        raise ValueError(raw)
    return value


def _niceness(raw: str) -> int:
    value = int(raw)
    if not 0 <= value <= 19:
        raise ValueError(raw)
    return value


def _limit(minimum: int) -> Callable[[str], int]:
    """0 (no limit), or at least `minimum`: below it an agent could not even start."""

    def parse(raw: str) -> int:
        value = int(raw)
        if value != 0 and value < minimum:
            raise ValueError(raw)
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError(raw)
    return value
