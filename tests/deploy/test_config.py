"""Settings: environment over file over defaults, every mistake reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.config import DEFAULT_REQUEST_HEADERS, ConfigError, load_settings


def test_defaults_follow_the_region() -> None:
    settings = load_settings({"AWS_REGION": "eu-central-1"})
    assert settings.prefix == "agent-web"
    assert settings.models == (
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "eu.anthropic.claude-haiku-4-5-20251001-v1:0",
    )
    assert settings.main_model.startswith("eu.anthropic.claude-sonnet")
    assert settings.fast_model.startswith("eu.anthropic.claude-haiku")
    assert settings.site_dir == Path(".web/build/client")
    assert settings.manages_cognito


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    file = tmp_path / "deploy.toml"
    file.write_text(
        'prefix = "from-file"\nregion = "us-west-2"\nidle_timeout = 600\n'
        'models = ["us.anthropic.claude-opus-4-1-20250805-v1:0"]\n'
        '[runtime_env]\nAGENT_IDLE_TIMEOUT = "600"\n'
    )
    settings = load_settings({"DEPLOY_PREFIX": "from-env"}, file)
    assert (settings.prefix, settings.region, settings.idle_timeout) == (
        "from-env",
        "us-west-2",
        600,
    )
    assert settings.models == ("us.anthropic.claude-opus-4-1-20250805-v1:0",)
    assert settings.runtime_env == {"AGENT_IDLE_TIMEOUT": "600"}


def test_every_mistake_at_once(tmp_path: Path) -> None:
    file = tmp_path / "deploy.toml"
    file.write_text(
        'github_client_secret = "oops"\ncolour = "blue"\n[runtime_env]\nANTHROPIC_API_KEY = "x"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(
            {
                "AWS_REGION": "eu-west-1",
                "DEPLOY_PREFIX": "Bad_Prefix",
                "DEPLOY_IDLE_TIMEOUT": "30",
                "DEPLOY_REQUEST_HEADERS": "X-Amzn-Bedrock-AgentCore-Runtime-Custom-*",
                "COGNITO_USER_POOL_ID": "eu-west-1_abc",
                "GITHUB_CLIENT_ID": "Iv1.x",
            },
            file,
        )
    text = str(raised.value)
    for expected in (
        "github_client_secret is a secret: set GITHUB_CLIENT_SECRET instead",
        "unknown setting 'colour'",
        "ANTHROPIC_API_KEY looks like a secret",
        "DEPLOY_PREFIX='Bad_Prefix'",
        "DEPLOY_IDLE_TIMEOUT=30",
        "no wildcards",
        "must include Authorization",
        "COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID: set both or neither",
        "GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET: set both or neither",
    ):
        assert expected in text, expected


def test_region_is_required() -> None:
    with pytest.raises(ConfigError, match="AWS_REGION: required"):
        load_settings({})


def test_given_cognito_pool_is_not_managed() -> None:
    settings = load_settings(
        {"AWS_REGION": "us-east-1", "COGNITO_USER_POOL_ID": "p", "COGNITO_CLIENT_ID": "c"}
    )
    assert not settings.manages_cognito


def test_default_headers_carry_what_the_container_reads() -> None:
    """AgentCore passes on only allowlisted headers: the bearer token and the page's custom
    parameter that app/api/gate.py reads must both be on the list."""
    from app.api.gate import REFLEX_TOKEN_HEADER

    allowed = {header.lower() for header in DEFAULT_REQUEST_HEADERS}
    assert {"authorization", REFLEX_TOKEN_HEADER} <= allowed
