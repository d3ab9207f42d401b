"""`probe`: deploy deploy/probe_app.py as runtime `<prefix>_probe` behind the same Cognito
authorizer, call it once through /invocations and once through /ws as the page would, and
print what it reports (what AgentCore forwards: path, query, subprotocols, headers; whether
the microVM allows unprivileged user namespaces, which the agent sandbox needs).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from deploy import cognito, ecr, iam, identity, image, policy, runtime
from deploy.context import Context, DeployError
from deploy.names import runtime_urls

SESSION_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id"
CUSTOM_HEADER = "X-Amzn-Bedrock-AgentCore-Runtime-Custom-Reflex"
PROBE_LIFECYCLE = (300, 3600)


def up(ctx: Context, given_image: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
    """Deploy (or bring up to date) the probe and ask it once; returns what it answered."""
    names = ctx.names
    ecr.ensure(ctx)
    uri = image.ensure(ctx, image.PROBE_IMAGE, given_image)
    found_ids = cognito.ids(ctx)
    if found_ids is None:
        raise DeployError(
            "No Cognito pool for the probe's authorizer: run `up` first, or set "
            "COGNITO_USER_POOL_ID and COGNITO_CLIENT_ID"
        )
    pool_id, client_id = found_ids
    role_arn = iam.ensure_role(
        ctx,
        names.probe_role,
        policy.runtime_trust(names),
        policy.probe_policy(names, [policy.repository_arn(uri, names.partition)]),
    )
    wanted = runtime.configuration(
        ctx,
        image=uri,
        role_arn=role_arn,
        pool_id=pool_id,
        client_id=client_id,
        environment={},
        lifecycle=PROBE_LIFECYCLE,
    )
    found = runtime.ensure(ctx, names.probe_runtime, wanted)
    ws_url, invocations_url = runtime_urls(ctx.settings.region, str(found["agentRuntimeArn"]))
    if endpoint:  # tests: a local stand-in for the AgentCore data plane
        invocations_url = invocations_url.replace(
            f"https://bedrock-agentcore.{ctx.settings.region}.amazonaws.com", endpoint
        )
    token = sign_in(ctx, client_id)
    if token is None:
        _explain_sign_in(ctx, pool_id, client_id, invocations_url)
        return {}
    session = f"probe-{uuid.uuid4().hex}"  # AgentCore wants 33 characters or more
    answer = invoke(invocations_url, token, session)
    ctx.report.note("the probe answered /invocations:")
    print(json.dumps(answer, indent=2), file=ctx.report.out)
    if not endpoint:
        socket(ctx, ws_url, token, session)
    ctx.report.note("take it down with: python -m deploy probe --down")
    return answer


def down(ctx: Context) -> None:
    runtime_id = runtime.remove(ctx, ctx.names.probe_runtime)
    if runtime_id:
        identity.remove_workload_identity(ctx, runtime_id)
    iam.remove_role(ctx, ctx.names.probe_role)
    removed = ecr.delete_images(ctx, image.PROBE_IMAGE.kind + "-")
    if removed:
        ctx.report.deleted(f"{removed} probe image(s)")


def sign_in(ctx: Context, client_id: str) -> str | None:
    """An access token for the probe user from the settings (USER_PASSWORD_AUTH), or None."""
    s = ctx.settings
    if not (s.probe_username and s.probe_password):
        return None
    try:
        answer = ctx.clients.cognito.initiate_auth(
            AuthFlow="USER_PASSWORD_AUTH",
            ClientId=client_id,
            AuthParameters={"USERNAME": s.probe_username, "PASSWORD": s.probe_password},
        )
    except ClientError as error:
        raise DeployError(f"PROBE_USERNAME could not sign in: {error}") from error
    if "AuthenticationResult" not in answer:
        raise DeployError(
            f"PROBE_USERNAME must answer a {answer.get('ChallengeName')} challenge first: "
            "sign in once on the site (or set a permanent password with the AWS CLI)"
        )
    return str(answer["AuthenticationResult"]["AccessToken"])


def invoke(url: str, token: str, session: str) -> dict[str, Any]:
    body = json.dumps({"probe": "invocations"}).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            SESSION_HEADER: session,
            CUSTOM_HEADER: "probe",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            text = answer.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:2000]
        raise DeployError(f"/invocations answered HTTP {error.code}: {detail}") from error
    try:
        parsed: dict[str, Any] = json.loads(text)
    except ValueError:
        return {"text": text}
    return parsed


def socket(ctx: Context, ws_url: str, token: str, session: str) -> None:
    """Open /ws as the page does (token in the subprotocol, session and custom values in the
    query, engine.io's parameters too) and print the probe's first message."""
    try:
        from websockets.sync.client import connect
    except ImportError:
        ctx.report.skipped("WebSocket probe", "the websockets package is not installed")
        return
    encoded = base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")
    query = urlencode(
        {SESSION_HEADER: session, CUSTOM_HEADER: "probe", "EIO": "4", "transport": "websocket"}
    )
    protocols = [f"base64UrlBearerAuthorization.{encoded}", "base64UrlBearerAuthorization"]
    try:
        with connect(f"{ws_url}?{query}", subprotocols=protocols, open_timeout=60) as ws:  # type: ignore[arg-type]
            ctx.report.note(f"the probe answered /ws (subprotocol {ws.subprotocol!r}):")
            print(ws.recv(timeout=60), file=ctx.report.out)
    except Exception as error:
        ctx.report.warn(f"/ws: {type(error).__name__}: {error}")


def _explain_sign_in(ctx: Context, pool_id: str, client_id: str, url: str) -> None:
    ctx.report.note("no PROBE_USERNAME/PROBE_PASSWORD: the probe is up but was not called. Either")
    ctx.report.note(
        f"  aws cognito-idp admin-create-user --user-pool-id {pool_id} --username you@example.com"
        " --message-action SUPPRESS && aws cognito-idp admin-set-user-password"
        f" --user-pool-id {pool_id} --username you@example.com --password '...' --permanent"
    )
    ctx.report.note(
        "  then set PROBE_USERNAME and PROBE_PASSWORD and run `probe` again, or call it:"
    )
    ctx.report.note(
        f"  curl -X POST '{url}' -H \"Authorization: Bearer $TOKEN\""
        f" -H '{SESSION_HEADER}: probe-$(uuidgen)' -H 'Content-Type: application/json' -d '{{}}'"
        f"   (client {client_id})"
    )
