"""The composition root: builds the store, the engine and the demo model from settings, once
per process, and tears them down on shutdown. Adapters (HTTP API, Reflex states) ask for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.agent.engine import AgentEngine, EngineConfig
from app.auth.local import LocalAuth, install_key
from app.auth.service import Auth
from app.db.engine import open_database
from app.db.store import Store
from app.devtools.model_server import ModelServer
from app.devtools.scenario import SCENARIOS_DIR, load_scenario
from app.settings import Settings, get_settings

logger = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    store: Store
    engine: AgentEngine
    demo_model: ModelServer | None
    auth: Auth


_services: Services | None = None


async def start_services(settings: Settings | None = None) -> Services:
    """Open the database, start the engine (and the demo model when no credentials are set)."""
    global _services
    if _services is not None:
        return _services
    settings = settings or get_settings()
    store = Store(open_database(settings.database_url))
    model_env = dict(settings.model_env)
    demo: ModelServer | None = None
    if settings.demo_model:
        demo = ModelServer(load_scenario(settings.demo_scenario or SCENARIOS_DIR / "demo.json"))
        model_env.update(ANTHROPIC_BASE_URL=demo.start(), ANTHROPIC_API_KEY="demo-model")
        logger.warning("no model credentials configured: using the offline demo model")
    engine = AgentEngine(
        store,
        EngineConfig(
            projects_dir=settings.projects_dir,
            homes_dir=settings.agent_homes_dir,
            model_env=model_env,
            default_model=settings.default_model,
            max_agents_per_user=settings.max_agents_per_user,
            idle_timeout_s=settings.idle_timeout_s,
            max_message_chars=settings.max_message_chars,
        ),
    )
    await engine.start()
    _services = Services(
        settings=settings,
        store=store,
        engine=engine,
        demo_model=demo,
        auth=make_auth(settings, store),
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


async def stop_services() -> None:
    global _services
    if _services is None:
        return
    services, _services = _services, None
    await services.engine.shutdown()
    if services.demo_model is not None:
        services.demo_model.stop()
    services.store.engine.dispose()


def services() -> Services:
    if _services is None:
        raise RuntimeError("services are not started (the app's lifespan starts them)")
    return _services
