"""Deploy settings: environment variables over one optional TOML file over defaults.

Every mistake is collected and reported at once, by name, like the app's own settings. Secrets
(the GitHub client secret, the probe user's password) are read from the environment only, so
they never sit in a file that might be committed.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Headers AgentCore may pass to the container: the bearer token (the container verifies it
# again) and the page's custom parameter carrying its Reflex token (app/api/gate.py).
DEFAULT_REQUEST_HEADERS = (
    "Authorization",
    "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex",
)
# Claude on Bedrock through the cross-region inference profile of the region's geography.
DEFAULT_MODEL_IDS = (
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-haiku-4-5-20251001-v1:0",
)
GEOGRAPHIES = {"us": "us", "ca": "us", "eu": "eu", "ap": "apac"}
DEFAULT_OUTPUTS = Path("deploy-outputs.json")
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL", re.I)
# Set by the deploy from the database step (deploy/database.py), never from runtime_env.
DATABASE_VARIABLES = ("DATABASE_URL", "DATABASE_IAM_AUTH")


class ConfigError(Exception):
    """Every configuration problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "Invalid deploy configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        )
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    region: str
    prefix: str = "agent-web"
    image: str | None = None  # an image URI to deploy instead of building one
    database_url: str | None = None  # a database of one's own: no DSQL cluster is made
    builder: str = "auto"  # docker (buildx), podman, or auto: the first one found
    noncurrent_version_days: int = 7
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    cognito_domain_prefix: str | None = None
    callback_path: str = "/auth/callback"
    logout_path: str = "/"
    extra_callback_urls: tuple[str, ...] = ()
    allowed_email_domains: tuple[str, ...] = ()
    idle_timeout: int = 900
    max_lifetime: int = 28_800
    models: tuple[str, ...] = ()
    small_model: str | None = None
    request_headers: tuple[str, ...] = DEFAULT_REQUEST_HEADERS
    github_client_id: str | None = None
    github_client_secret: str | None = field(default=None, repr=False)
    github_return_path: str = "/github/callback"
    site_dir: Path = Path(".web/build/client")
    branch: str = "main"
    outputs: Path = DEFAULT_OUTPUTS
    runtime_env: Mapping[str, str] = field(default_factory=dict)
    probe_username: str | None = None
    probe_password: str | None = field(default=None, repr=False)
    wait_seconds: float = 900.0

    @property
    def manages_cognito(self) -> bool:
        """False when the settings name an existing pool and client: `up` and `down` leave
        them alone."""
        return not (self.cognito_user_pool_id and self.cognito_client_id)

    @property
    def manages_database(self) -> bool:
        """False when the settings give a database URL: `up` and `down` never touch it."""
        return not self.database_url

    @property
    def main_model(self) -> str:
        return self.models[0]

    @property
    def fast_model(self) -> str:
        return self.small_model or self.models[-1]


@dataclass(frozen=True)
class _Field:
    name: str
    env: str | None  # None: file only
    parse: Callable[[Any], Any]
    secret: bool = False  # environment only


def _text(raw: Any) -> str:
    if not isinstance(raw, str | int | float):
        raise ValueError("a string")
    return str(raw).strip()


def _whole(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("a whole number")
    return int(str(raw).strip())


def _number(raw: Any) -> float:
    return float(str(raw).strip())


def _words(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        raise ValueError("a list (comma-separated in the environment)")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _table(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ValueError("a table of NAME = value")
    return {str(k): str(v) for k, v in raw.items()}


FIELDS = (
    _Field("region", "AWS_REGION", _text),
    _Field("prefix", "DEPLOY_PREFIX", _text),
    _Field("image", "DEPLOY_IMAGE", _text),
    _Field("database_url", "DEPLOY_DATABASE_URL", _text),
    _Field("builder", "DEPLOY_BUILDER", _text),
    _Field("noncurrent_version_days", "DEPLOY_NONCURRENT_VERSION_DAYS", _whole),
    _Field("cognito_user_pool_id", "COGNITO_USER_POOL_ID", _text),
    _Field("cognito_client_id", "COGNITO_CLIENT_ID", _text),
    _Field("cognito_domain_prefix", "COGNITO_DOMAIN_PREFIX", _text),
    _Field("callback_path", "DEPLOY_CALLBACK_PATH", _text),
    _Field("logout_path", "DEPLOY_LOGOUT_PATH", _text),
    _Field("extra_callback_urls", "DEPLOY_EXTRA_CALLBACK_URLS", _words),
    _Field("allowed_email_domains", "ALLOWED_EMAIL_DOMAINS", _words),
    _Field("idle_timeout", "DEPLOY_IDLE_TIMEOUT", _whole),
    _Field("max_lifetime", "DEPLOY_MAX_LIFETIME", _whole),
    _Field("models", "BEDROCK_MODELS", _words),
    _Field("small_model", "BEDROCK_SMALL_MODEL", _text),
    _Field("request_headers", "DEPLOY_REQUEST_HEADERS", _words),
    _Field("github_client_id", "GITHUB_CLIENT_ID", _text),
    _Field("github_client_secret", "GITHUB_CLIENT_SECRET", _text, secret=True),
    _Field("github_return_path", "GITHUB_RETURN_PATH", _text),
    _Field("site_dir", "DEPLOY_SITE_DIR", lambda raw: Path(_text(raw))),
    _Field("branch", "DEPLOY_BRANCH", _text),
    _Field("outputs", "DEPLOY_OUTPUTS", lambda raw: Path(_text(raw))),
    _Field("runtime_env", None, _table),
    _Field("probe_username", "PROBE_USERNAME", _text),
    _Field("probe_password", "PROBE_PASSWORD", _text, secret=True),
    _Field("wait_seconds", "DEPLOY_WAIT_SECONDS", _number),
)


def load_settings(environ: Mapping[str, str], file: Path | None = None) -> Settings:
    """Settings from `environ` (and `file`, a TOML table of the same names in snake_case),
    raising ConfigError listing every mistake."""
    problems: list[str] = []
    from_file = _read_file(file, problems) if file else {}
    known = {f.name for f in FIELDS}
    problems += [f"{file}: unknown setting {key!r}" for key in from_file if key not in known]
    values: dict[str, Any] = {}
    for spec in FIELDS:
        raw: Any = environ.get(spec.env, "").strip() if spec.env else ""
        source = spec.env
        if spec.name == "region" and not raw:
            raw = environ.get("AWS_DEFAULT_REGION", "").strip()
        if raw == "" and spec.name in from_file:
            if spec.secret:
                problems.append(f"{file}: {spec.name} is a secret: set {spec.env} instead")
                continue
            raw, source = from_file[spec.name], f"{file}: {spec.name}"
        if raw == "":
            continue
        try:
            values[spec.name] = spec.parse(raw)
        except ValueError as error:
            problems.append(f"{source}={raw!r}: {error}")
    if "region" not in values:
        problems.append("AWS_REGION: required (the region to deploy to)")
        values["region"] = "us-east-1"
    settings = Settings(**values)
    if not settings.models:
        settings = _with_default_models(settings, problems)
    problems += check(settings)
    if problems:
        raise ConfigError(problems)
    return settings


def _read_file(file: Path, problems: list[str]) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        problems.append(f"{file}: {error}")
        return {}


def _with_default_models(settings: Settings, problems: list[str]) -> Settings:
    geography = GEOGRAPHIES.get(settings.region.split("-")[0])
    if geography is None:
        problems.append(f"BEDROCK_MODELS: required in {settings.region} (model or profile ids)")
        return settings
    models = tuple(f"{geography}.{model}" for model in DEFAULT_MODEL_IDS)
    return replace(settings, models=models)


def check(s: Settings) -> list[str]:
    """Rules the services would otherwise refuse halfway through a deployment."""
    problems: list[str] = []
    if not re.fullmatch(r"[a-z][a-z0-9-]{1,28}[a-z0-9]", s.prefix) or "--" in s.prefix:
        problems.append(
            f"DEPLOY_PREFIX={s.prefix!r}: 3-30 of a-z 0-9 -, starting with a letter "
            "(it names the bucket, the roles, the runtime)"
        )
    domain = s.cognito_domain_prefix or s.prefix
    if s.manages_cognito and re.search(r"aws|amazon|cognito", domain):
        problems.append(
            f"COGNITO_DOMAIN_PREFIX: Cognito refuses a domain containing aws, amazon or cognito "
            f"({domain!r}); set another"
        )
    if bool(s.cognito_user_pool_id) != bool(s.cognito_client_id):
        problems.append("COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID: set both or neither")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", s.region):
        problems.append(f"AWS_REGION={s.region!r}: not a region name")
    if s.builder not in ("auto", "docker", "podman"):
        problems.append(f"DEPLOY_BUILDER={s.builder!r}: auto, docker or podman")
    if s.image and not re.fullmatch(
        r"\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com/[^:@]+[:@].+", s.image
    ):
        problems.append(f"--image {s.image!r}: an ECR image URI with a tag or digest")
    if s.noncurrent_version_days < 1:
        problems.append("DEPLOY_NONCURRENT_VERSION_DAYS: at least 1")
    for name, seconds in (("IDLE_TIMEOUT", s.idle_timeout), ("MAX_LIFETIME", s.max_lifetime)):
        if not 60 <= seconds <= 28_800:
            problems.append(f"DEPLOY_{name}={seconds}: seconds from 60 to 28800")
    if s.idle_timeout > s.max_lifetime:
        problems.append("DEPLOY_IDLE_TIMEOUT: cannot exceed DEPLOY_MAX_LIFETIME")
    for name, path in (
        ("DEPLOY_CALLBACK_PATH", s.callback_path),
        ("DEPLOY_LOGOUT_PATH", s.logout_path),
        ("GITHUB_RETURN_PATH", s.github_return_path),
    ):
        if not path.startswith("/"):
            problems.append(f"{name}={path!r}: a path starting with /")
    problems += [
        f"DEPLOY_EXTRA_CALLBACK_URLS: {url!r} must be https:// (or http://localhost)"
        for url in s.extra_callback_urls
        if not re.match(r"https://|http://localhost[:/]", url)
    ]
    problems += _check_headers(s.request_headers)
    problems += [
        f"BEDROCK_MODELS: {model!r} is not a model id, profile id or ARN"
        for model in s.models
        if not re.fullmatch(r"[A-Za-z0-9.:/_-]+", model)
    ]
    if bool(s.github_client_id) != bool(s.github_client_secret):
        problems.append("GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET: set both or neither")
    problems += _check_runtime_env(s.runtime_env)
    if s.database_url:
        problems += _check_database_url(s.database_url)
    if not re.fullmatch(r"[A-Za-z0-9/_.-]{1,255}", s.branch):
        problems.append(f"DEPLOY_BRANCH={s.branch!r}: not a branch name")
    return problems


def _check_headers(headers: tuple[str, ...]) -> list[str]:
    problems = [
        f"DEPLOY_REQUEST_HEADERS: {h!r} is not a header name (no wildcards: list each)"
        for h in headers
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]{0,255}", h)
    ]
    if "authorization" not in {h.lower() for h in headers}:
        problems.append("DEPLOY_REQUEST_HEADERS: must include Authorization")
    if len(headers) > 20:
        problems.append("DEPLOY_REQUEST_HEADERS: at most 20")
    return problems


def _check_runtime_env(env: Mapping[str, str]) -> list[str]:
    """Runtime environment variables are readable by anyone who may read the runtime's
    configuration: no secrets there (the runtime's role and AgentCore Identity give access)."""
    problems = []
    for name in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            problems.append(f"runtime_env: {name!r} is not a variable name")
        elif SECRET_NAME.search(name):
            problems.append(f"runtime_env: {name} looks like a secret; secrets never go there")
        elif name in DATABASE_VARIABLES:
            problems.append(
                f"runtime_env: {name} is set by the deploy; to use a database of your own, "
                "set DEPLOY_DATABASE_URL (database_url)"
            )
    return problems


def _check_database_url(url: str) -> list[str]:
    """A PostgreSQL URL with a host and no password (the URL goes into the runtime's
    environment, which never holds a secret). The URL itself is never repeated: it might."""
    try:
        parts = urlsplit(url)
        host, password = parts.hostname, parts.password
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return ["DEPLOY_DATABASE_URL: not a URL"]
    problems = []
    if not re.fullmatch(r"postgresql(\+\w+)?", parts.scheme):
        problems.append(
            "DEPLOY_DATABASE_URL: a postgresql:// URL (the app's SQLite stays on the microVM)"
        )
    if not host:
        problems.append("DEPLOY_DATABASE_URL: names no host")
    secret_query = any(SECRET_NAME.search(key) for key, _ in parse_qsl(parts.query))
    if password is not None or secret_query:
        problems.append(
            "DEPLOY_DATABASE_URL: holds a password, and the runtime's environment never holds a "
            "secret; use an Aurora DSQL endpoint (the app signs IAM tokens) or leave it unset"
        )
    return problems
