"""`python -m deploy` as a person runs it (the clients are the test account's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.__main__ import main
from tests.deploy.conftest import Stack


def test_cli_up_site_env_status_down(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = Path(stack.env["DEPLOY_OUTPUTS"])
    assert main(["up", "--image", stack.image], stack.env, stack.clients) == 0
    written = json.loads(outputs.read_text())
    assert capsys.readouterr().out.splitlines()[-1].startswith("= ")

    assert main(["site-env", "--outputs", str(outputs)], {}, None) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"AGENTCORE_WS_URL={written['websocket_url']}",
        f"COGNITO_REGION={written['region']}",
        f"COGNITO_CLIENT_ID={written['cognito_client_id']}",
    ]

    assert main(["up", "--image", stack.image], stack.env, stack.clients) == 0
    assert "= Nothing changed" in capsys.readouterr().out

    assert main(["status"], stack.env, stack.clients) == 0
    assert f"• AgentCore runtime {stack.prefix}: READY" in capsys.readouterr().out

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("builtins.input", lambda prompt: "n")
        assert main(["down", "--delete-data"], stack.env, stack.clients) == 1
    assert main(["down", "--delete-data", "--yes"], stack.env, stack.clients) == 0
    assert f"✓ S3 bucket {written['bucket']} (deleted)" in capsys.readouterr().out


def test_cli_reports_configuration_mistakes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"], {"DEPLOY_PREFIX": "x"}, None) == 2
    error = capsys.readouterr().err
    assert "AWS_REGION: required" in error and "DEPLOY_PREFIX='x'" in error
