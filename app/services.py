"""The composition root: builds the store, the engine and the demo model from settings, once
per process, and tears them down on shutdown. Adapters (HTTP API, Reflex states) ask for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from app.agent.cluster import Cluster, ClusteredEngine
from app.agent.engine import AgentEngine, EngineConfig
from app.agent.extensions import Extensions
from app.agent.mcp import McpServers
from app.agent.project_env import ProjectEnv
from app.auth.local import LocalAuth, install_key
from app.auth.service import Auth
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario
from app.github.repo import ProjectGit
from app.github.service import GitHubService
from app.github.tools import github_tools
from app.github.vault import Vault
from app.sandbox.relay import Upstream
from app.sandbox.service import Sandbox, SandboxConfig
from app.sandbox.usage import Budgets
from app.settings import Settings, get_settings, reflex_states_dir
from app.workspace.bucket import BucketConfig
from app.workspace.sync import SyncConfig, WorkspaceSync

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: AgentEngine
    sandbox: Sandbox
    demo_model: ModelServer | None
    auth: Auth
    github: GitHubService
    budgets: Budgets


_services: Services | None = None


async def start_services(settings: Settings | None = None) -> Services:
    """Open the database, start the engine (and the demo model when no credentials are set)."""
    global _services
    if _services is not None:
        return _services
    settings = settings or get_settings()
    store = Store(open_database(settings.database_url, iam_auth=settings.database_iam_auth))
    secure_data_dir(settings.data_dir)
    model_env = dict(settings.model_env)
    demo: ModelServer | None = None
    if settings.demo_model:
        demo = ModelServer(load_scenario(settings.demo_scenario or SCENARIOS_DIR / "demo.json"))
        model_env.update(ANTHROPIC_BASE_URL=demo.start(), ANTHROPIC_API_KEY="demo-model")
        logger.warning("no model credentials configured: using the offline demo model")
    sandbox = Sandbox(
        SandboxConfig(
            enabled=settings.sandbox,
            uid_base=settings.sandbox_uid_base,
            allowlist=settings.allowed_hosts,
            readonly_paths=settings.readonly_paths,
            niceness=settings.agent_niceness,
            memory_mb=settings.agent_memory_mb,
            max_processes=settings.agent_max_processes,
        ),
        store=store,
        upstream=Upstream.from_env(model_env),
        model_env=model_env,
    )
    budgets = Budgets(
        spent_since=store.spent_since,
        own_budget=lambda user_id: store.get_user(user_id).monthly_budget_usd,
        default_usd=settings.user_monthly_budget_usd,
    )
    sandbox.gateway.budgets = budgets
    workspaces = None
    if settings.s3_bucket:
        workspaces = WorkspaceSync(
            SyncConfig(
                BucketConfig(
                    bucket=settings.s3_bucket,
                    endpoint_url=settings.s3_endpoint_url,
                    region=settings.s3_region,
                    user_role_arn=settings.s3_user_role_arn,
                ),
                state_dir=settings.data_dir / "sync",
                excludes=settings.sync_excludes,
            )
        )
    library = settings.data_dir / "extensions"  # each user's skills and plugins
    kind = ClusteredEngine if settings.cluster_redis_url else AgentEngine
    engine = kind(
        store,
        EngineConfig(
            projects_dir=settings.projects_dir,
            homes_dir=settings.agent_homes_dir,
            default_model=settings.default_model,
            max_agents_per_user=settings.max_agents_per_user,
            idle_timeout_s=settings.idle_timeout_s,
            max_message_chars=settings.max_message_chars,
            extensions_dir=library,
            recover_at_start=not settings.cluster_redis_url,
        ),
        sandbox,
        workspaces,
    )
    if isinstance(engine, ClusteredEngine):  # one of several instances (app/agent/cluster.py)
        engine.cluster = Cluster(settings.cluster_redis_url or "")
    await engine.start()
    github = GitHubService(
        store,
        web_url=settings.github_url,
        api_url=settings.github_api_url,
        install_key=install_key(settings.data_dir, settings.secret_key),
        client_id=settings.github_client_id,
        client_secret=settings.github_client_secret,
        repos=ProjectGit(sandbox, settings.data_dir / "git-mirrors"),
    )
    if settings.github_provider_name and settings.github_return_url:  # on AgentCore
        github.use_identity(settings.github_provider_name, settings.github_return_url)
    engine.add_tools(github_tools(github, engine.project_place))
    vault = Vault(install_key(settings.data_dir, settings.secret_key))
    mcp = McpServers(store, vault)
    engine.use_mcp_servers(mcp)
    engine.use_extensions(Extensions(store, library, engine.project_place, sandbox))
    engine.use_project_env(ProjectEnv(store, install_key(settings.data_dir, settings.secret_key)))
    _services = Services(
        settings=settings,
        store=store,
        engine=engine,
        sandbox=sandbox,
        demo_model=demo,
        auth=make_auth(settings, store),
        github=github,
        budgets=budgets,
    )
    return _services


def make_auth(settings: Settings, store: Store) -> Auth:
    domains = settings.allowed_email_domains
    if settings.auth_mode == "local":
        key = install_key(settings.data_dir, settings.secret_key)
        return Auth(
            store, local=LocalAuth(store, key, allowed_domains=domains), allowed_domains=domains
        )
    from app.auth.cognito import CognitoClient, CognitoConfig, CognitoVerifier

    config = CognitoConfig(
        region=settings.cognito_region or "",
        user_pool_id=settings.cognito_user_pool_id or "",
        client_id=settings.cognito_client_id or "",
        jwks_url=settings.cognito_jwks_url,
        endpoint_url=settings.cognito_endpoint_url,
        allowed_email_domains=domains,
    )
    return Auth(
        store,
        verifier=CognitoVerifier(config),
        cognito=CognitoClient(config),
        allowed_domains=domains,
    )


def running() -> bool:
    """Whether this process has started its services (they are one per process)."""
    return _services is not None


async def stop_services() -> None:
    global _services
    if _services is None:
        return
    services = _services
    try:
        # Readers still following sessions (pages, streams) see the engine wind down; only
        # then are the services gone.
        await services.engine.shutdown()
    finally:
        _services = None
        if services.demo_model is not None:
            services.demo_model.stop()
        services.store.engine.dispose()


def secure_data_dir(data_dir: Path) -> None:
    """The data directory (database, signing key, every user's files) is the app's alone.
    Agents never see it (their jail binds only their own folders); this also keeps other
    accounts on the machine out."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    states = reflex_states_dir(data_dir)
    states.mkdir(mode=0o700, exist_ok=True)
    states.chmod(0o700)
    for name in ("app.db", "app.db-wal", "app.db-shm", "secret.key"):
        path = data_dir / name
        if path.exists():
            path.chmod(0o600)


def services() -> Services:
    if _services is None:
        raise RuntimeError("services are not started (the app's lifespan starts them)")
    return _services
