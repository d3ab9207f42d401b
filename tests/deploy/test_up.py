"""`up` against moto and the fakes: everything made, the outputs file written, and a second
`up` that changes nothing."""

from __future__ import annotations

import json
from urllib.parse import quote

from deploy import amplify
from deploy.config import DEFAULT_REQUEST_HEADERS
from deploy.names import TAG_KEY
from tests.deploy.conftest import ACCOUNT, REGION, Stack


def test_up_creates_everything_and_writes_outputs(stack: Stack) -> None:
    outputs = stack.up()

    written = json.loads((stack.site.parent / "outputs.json").read_text())
    assert written["runtime_arn"] == outputs.runtime_arn
    arn = written["runtime_arn"]
    assert written["websocket_url"] == (
        f"wss://bedrock-agentcore.{REGION}.amazonaws.com/runtimes/{quote(arn, safe='')}/ws"
    )
    assert written["invocations_url"].endswith("/invocations?qualifier=DEFAULT")
    assert written["bucket"] == f"{stack.prefix}-{REGION}-{ACCOUNT}"
    pool = written["cognito_user_pool_id"]
    assert written["cognito_discovery_url"] == (
        f"https://cognito-idp.{REGION}.amazonaws.com/{pool}/.well-known/openid-configuration"
    )
    assert written["cognito_client_id"]
    app = stack.amplify.apps[written["amplify_app_id"]]
    assert written["site_url"] == f"https://main.{app['defaultDomain']}"
    assert written["github_callback_url"].startswith("https://bedrock-agentcore.")
    assert any("GitHub OAuth app callback URL: https://" in line for line in stack.printed)
    assert stack.printed[-1].startswith("=") and "change" in stack.printed[-1]


def test_up_configures_the_runtime(stack: Stack) -> None:
    outputs = stack.up()
    runtimes = stack.clients.runtimes
    found = runtimes.get_agent_runtime(agentRuntimeId=outputs.runtime_id)
    assert found["status"] == "READY"
    assert found["agentRuntimeArtifact"]["containerConfiguration"]["containerUri"] == stack.image
    assert found["networkConfiguration"] == {"networkMode": "PUBLIC"}
    assert found["roleArn"] == outputs.execution_role_arn
    jwt = found["authorizerConfiguration"]["customJWTAuthorizer"]
    assert jwt == {
        "discoveryUrl": outputs.cognito_discovery_url,
        "allowedClients": [outputs.cognito_client_id],
    }
    headers = found["requestHeaderConfiguration"]["requestHeaderAllowlist"]
    assert headers == list(DEFAULT_REQUEST_HEADERS)
    assert found["lifecycleConfiguration"] == {
        "idleRuntimeSessionTimeout": 900,
        "maxLifetime": 28800,
    }
    env = found["environmentVariables"]
    assert env["S3_BUCKET"] == outputs.bucket
    assert env["S3_USER_ROLE_ARN"] == outputs.user_role_arn
    assert env["AWS_REGION"] == REGION
    assert env["COGNITO_USER_POOL_ID"] == outputs.cognito_user_pool_id
    assert env["COGNITO_CLIENT_ID"] == outputs.cognito_client_id
    assert env["ANTHROPIC_MODEL"].startswith("eu.anthropic.claude")
    assert env["GITHUB_RETURN_URL"] == f"{outputs.site_url}/github/callback"
    assert not [name for name in env if "SECRET" in name or "PASSWORD" in name]
    assert "github-test-secret" not in json.dumps(env)
    tags = runtimes.list_tags_for_resource(resourceArn=outputs.runtime_arn)["tags"]
    assert tags == {TAG_KEY: stack.prefix}
    identity = stack.identity.identities[outputs.runtime_id]
    assert identity["allowedResourceOauth2ReturnUrls"] == [outputs.github_return_url]


def test_up_configures_cognito_for_the_site(stack: Stack) -> None:
    outputs = stack.up()
    cognito = stack.clients.cognito
    pool = cognito.describe_user_pool(UserPoolId=outputs.cognito_user_pool_id)["UserPool"]
    assert pool["UserPoolTags"] == {TAG_KEY: stack.prefix}
    client = cognito.describe_user_pool_client(
        UserPoolId=outputs.cognito_user_pool_id, ClientId=outputs.cognito_client_id
    )["UserPoolClient"]
    assert "ClientSecret" not in client
    assert set(client["ExplicitAuthFlows"]) == {
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    }
    assert client["AllowedOAuthFlows"] == ["code"]
    assert set(client["AllowedOAuthScopes"]) == {"openid", "email", "profile"}
    assert client["CallbackURLs"] == [f"{outputs.site_url}/auth/callback"]
    assert client["LogoutURLs"] == [f"{outputs.site_url}/"]
    domain = cognito.describe_user_pool_domain(Domain=f"{stack.prefix}-{ACCOUNT}")
    assert domain["DomainDescription"]["UserPoolId"] == outputs.cognito_user_pool_id
    assert [p["ManagedLoginVersion"] for p in stack.params_of("CreateUserPoolDomain")] == [2]
    assert (outputs.cognito_user_pool_id, outputs.cognito_client_id) in stack.branding.styles


def test_up_twice_changes_nothing(stack: Stack) -> None:
    first = stack.up()
    assert stack.changing_calls()

    second = stack.up()

    assert stack.changing_calls() == []
    assert second == first
    assert stack.printed[-1] == "= Nothing changed: everything was already in place."
    assert not [line for line in stack.printed if "(created)" in line or "(updated" in line]


def test_up_updates_only_what_differs(stack: Stack) -> None:
    stack.up()

    stack.up(DEPLOY_IDLE_TIMEOUT="600", DEPLOY_NONCURRENT_VERSION_DAYS="3")

    assert sorted(stack.changing_calls()) == [
        "bedrock-agentcore-control:UpdateAgentRuntime",
        "s3:PutBucketLifecycleConfiguration",
    ]


def test_up_deploys_the_site_again_only_when_it_changed(stack: Stack) -> None:
    outputs = stack.up()
    assert len(stack.params_of("CreateDeployment")) == 1

    (stack.site / "index.html").write_text("<html>new home</html>")
    stack.up()

    assert stack.changing_calls() == [
        "amplify:CreateDeployment",
        "amplify:StartDeployment",
        "amplify:TagResource",
    ]
    _, digest, _ = amplify.pack(stack.site)
    branch = stack.amplify.branches[(str(outputs.amplify_app_id), "main")]
    assert branch["tags"][amplify.SITE_TAG] == digest
