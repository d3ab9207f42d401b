"""Configuration: safe defaults, every mistake reported at once, secrets kept from agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import SettingsError, agent_model_env, load_settings


def test_defaults_run_on_a_laptop_with_the_demo_model(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'app.db'}"
    assert settings.auth_mode == "local"
    assert settings.demo_model is True
    assert settings.max_agents_per_user == 3 and settings.idle_timeout_s == 300
    assert settings.default_model in settings.models


def test_every_mistake_is_reported_together() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "AUTH_MODE": "ldap",
                "MAX_AGENTS_PER_USER": "0",
                "AGENT_IDLE_TIMEOUT": "soon",
                "DATABASE_URL": "mysql://x",
                "APP_SECRET_KEY": "short",
                "DEMO_MODEL": "off",
            }
        )
    text = str(caught.value)
    for name in (
        "AUTH_MODE",
        "MAX_AGENTS_PER_USER",
        "AGENT_IDLE_TIMEOUT",
        "DATABASE_URL",
        "APP_SECRET_KEY",
        "DEMO_MODEL",
    ):
        assert name in text
    assert len(caught.value.problems) == 6


def test_cognito_mode_names_what_is_missing() -> None:
    with pytest.raises(SettingsError, match="COGNITO_USER_POOL_ID: required"):
        load_settings(
            {"AUTH_MODE": "cognito", "COGNITO_REGION": "us-east-1", "COGNITO_CLIENT_ID": "c"}
        )


def test_credentials_turn_the_demo_model_off_and_models_are_configurable() -> None:
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": "sk-test",
            "MODELS": "gpt-4o, claude-opus-4-1",
            "ANTHROPIC_MODEL": "claude-opus-4-1",
        }
    )
    assert settings.demo_model is False
    assert settings.models == ("gpt-4o", "claude-opus-4-1")
    assert settings.model_env == {
        "ANTHROPIC_API_KEY": "sk-test",
        "ANTHROPIC_MODEL": "claude-opus-4-1",
    }


def test_aws_credentials_reach_the_agent_only_for_bedrock() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-west-2",
        "APP_SECRET_KEY": "x" * 40,
        "DATABASE_URL": "postgresql://u:p@h/d",
    }
    assert agent_model_env(environ) == {}
    bedrock = agent_model_env({**environ, "CLAUDE_CODE_USE_BEDROCK": "1"})
    assert bedrock == {
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_REGION": "us-west-2",
    }
