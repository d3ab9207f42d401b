"""The Cognito user pool, its public web client and managed login, unless the settings name an
existing pool and client (then they are only checked, never changed or deleted).

The client has no secret (a browser cannot keep one): the page signs in with the user-pool API
(USER_PASSWORD_AUTH or SRP, then refresh tokens) or through managed login with the
authorization-code flow, for which Cognito requires PKCE from public clients. Callback and
sign-out URLs are on the static site's domain.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import not_found
from deploy.context import Context, DeployError
from deploy.names import TAG_KEY

SCOPES = ["openid", "email", "profile"]


def discovery_url(region: str, pool_id: str) -> str:
    return f"https://cognito-idp.{region}.amazonaws.com/{pool_id}/.well-known/openid-configuration"


def client_settings(ctx: Context, site_url: str) -> dict[str, Any]:
    s = ctx.settings
    return {
        "ExplicitAuthFlows": [
            "ALLOW_USER_PASSWORD_AUTH",
            "ALLOW_USER_SRP_AUTH",
            "ALLOW_REFRESH_TOKEN_AUTH",
        ],
        "SupportedIdentityProviders": ["COGNITO"],
        "CallbackURLs": [site_url + s.callback_path, *s.extra_callback_urls],
        "LogoutURLs": [site_url + s.logout_path],
        "AllowedOAuthFlows": ["code"],
        "AllowedOAuthScopes": SCOPES,
        "AllowedOAuthFlowsUserPoolClient": True,
        "PreventUserExistenceErrors": "ENABLED",
        "EnableTokenRevocation": True,
        "AccessTokenValidity": 60,
        "IdTokenValidity": 60,
        "RefreshTokenValidity": 30,
        "TokenValidityUnits": {
            "AccessToken": "minutes",
            "IdToken": "minutes",
            "RefreshToken": "days",
        },
    }


def ensure(ctx: Context, site_url: str) -> None:
    if not ctx.settings.manages_cognito:
        _check_given(ctx, site_url)
        return
    pool_id = _ensure_pool(ctx)
    client_id = _ensure_client(ctx, pool_id, site_url)
    _ensure_domain(ctx, pool_id)
    _ensure_branding(ctx, pool_id, client_id)
    _set_outputs(ctx, pool_id, client_id)


def find_pool(ctx: Context) -> dict[str, Any] | None:
    """The pool named for this deployment, described (tags included)."""
    cognito = ctx.clients.cognito
    for page in cognito.get_paginator("list_user_pools").paginate(MaxResults=60):
        for pool in page["UserPools"]:
            if pool["Name"] == ctx.names.user_pool:
                found: dict[str, Any] = cognito.describe_user_pool(UserPoolId=pool["Id"])[
                    "UserPool"
                ]
                return found
    return None


def find_client(ctx: Context, pool_id: str) -> dict[str, Any] | None:
    cognito = ctx.clients.cognito
    pages = cognito.get_paginator("list_user_pool_clients").paginate(
        UserPoolId=pool_id, MaxResults=60
    )
    for page in pages:
        for client in page["UserPoolClients"]:
            if client["ClientName"] == ctx.names.user_pool_client:
                found: dict[str, Any] = cognito.describe_user_pool_client(
                    UserPoolId=pool_id, ClientId=client["ClientId"]
                )["UserPoolClient"]
                return found
    return None


def ids(ctx: Context) -> tuple[str, str] | None:
    """(pool id, client id) of the deployment's pool, made by `up` or given; None if none."""
    if not ctx.settings.manages_cognito:
        return str(ctx.settings.cognito_user_pool_id), str(ctx.settings.cognito_client_id)
    pool = find_pool(ctx)
    client = find_client(ctx, pool["Id"]) if pool else None
    return (str(pool["Id"]), str(client["ClientId"])) if pool and client else None


def remove(ctx: Context) -> None:
    if not ctx.settings.manages_cognito:
        ctx.report.kept(f"Cognito user pool {ctx.settings.cognito_user_pool_id}", "given")
        return
    what = f"Cognito user pool {ctx.names.user_pool}"
    pool = find_pool(ctx)
    if pool is None:
        ctx.report.absent(what)
        return
    if pool.get("UserPoolTags", {}).get(TAG_KEY) != ctx.names.prefix:
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
        return
    domain = _domain(ctx)
    if domain.get("UserPoolId") == pool["Id"]:
        ctx.clients.cognito.delete_user_pool_domain(
            Domain=ctx.names.cognito_domain, UserPoolId=pool["Id"]
        )
        ctx.report.deleted(f"Cognito domain {ctx.names.cognito_domain}")
    ctx.clients.cognito.delete_user_pool(UserPoolId=pool["Id"])
    ctx.report.deleted(what)


def status(ctx: Context) -> None:
    found = ids(ctx)
    what = f"Cognito user pool {ctx.names.user_pool}"
    if not ctx.settings.manages_cognito:
        what = f"Cognito user pool {ctx.settings.cognito_user_pool_id} (given)"
    ctx.report.state(what, "absent" if found is None else f"client {found[1]}")
    if ctx.settings.manages_cognito:
        domain = _domain(ctx)
        state = domain.get("Status", "absent") if domain else "absent"
        ctx.report.state(f"Cognito domain {ctx.names.cognito_domain}", str(state))


def _ensure_pool(ctx: Context) -> str:
    what = f"Cognito user pool {ctx.names.user_pool}"
    pool = find_pool(ctx)
    if pool is not None:
        ctx.report.exists(what)
        return str(pool["Id"])
    pool = ctx.clients.cognito.create_user_pool(
        PoolName=ctx.names.user_pool,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
        Policies={
            "PasswordPolicy": {
                "MinimumLength": 12,
                "RequireLowercase": True,
                "RequireUppercase": True,
                "RequireNumbers": True,
                "RequireSymbols": False,
                "TemporaryPasswordValidityDays": 7,
            }
        },
        AccountRecoverySetting={"RecoveryMechanisms": [{"Priority": 1, "Name": "verified_email"}]},
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": False},
        UserPoolTags=ctx.names.tags,
    )["UserPool"]
    ctx.report.created(what)
    return str(pool["Id"])


def _ensure_client(ctx: Context, pool_id: str, site_url: str) -> str:
    what = f"Cognito client {ctx.names.user_pool_client}"
    wanted = client_settings(ctx, site_url)
    client = find_client(ctx, pool_id)
    if client is None:
        client = ctx.clients.cognito.create_user_pool_client(
            UserPoolId=pool_id,
            ClientName=ctx.names.user_pool_client,
            GenerateSecret=False,
            **wanted,
        )["UserPoolClient"]
        ctx.report.created(what)
        return str(client["ClientId"])
    if client.get("ClientSecret"):
        raise DeployError(f"{what} has a secret; a browser cannot keep one. Delete the client.")
    differs = [key for key, value in wanted.items() if _plain(client.get(key)) != _plain(value)]
    if differs:
        ctx.clients.cognito.update_user_pool_client(
            UserPoolId=pool_id,
            ClientId=client["ClientId"],
            ClientName=ctx.names.user_pool_client,
            **wanted,
        )
        ctx.report.updated(what, ", ".join(differs))
    else:
        ctx.report.exists(what)
    return str(client["ClientId"])


def _ensure_domain(ctx: Context, pool_id: str) -> None:
    """Managed login (version 2) on `<domain>.auth.<region>.amazoncognito.com`."""
    name = ctx.names.cognito_domain
    what = f"Cognito domain {name}"
    found = _domain(ctx)
    if not found:
        ctx.clients.cognito.create_user_pool_domain(
            Domain=name, UserPoolId=pool_id, ManagedLoginVersion=2
        )
        ctx.report.created(what)
    elif found.get("UserPoolId") != pool_id:
        raise DeployError(f"{what} belongs to another user pool; set COGNITO_DOMAIN_PREFIX")
    elif found.get("ManagedLoginVersion", 2) != 2:
        ctx.clients.cognito.update_user_pool_domain(
            Domain=name, UserPoolId=pool_id, ManagedLoginVersion=2
        )
        ctx.report.updated(what, "managed login")
    else:
        ctx.report.exists(what)


def _ensure_branding(ctx: Context, pool_id: str, client_id: str) -> None:
    """Managed login pages show only for a client with a style; Cognito's own will do."""
    what = f"Cognito managed login style for {ctx.names.user_pool_client}"
    try:
        ctx.clients.cognito.describe_managed_login_branding_by_client(
            UserPoolId=pool_id, ClientId=client_id
        )
    except ClientError as error:
        if not not_found(error):
            raise
        ctx.clients.cognito.create_managed_login_branding(
            UserPoolId=pool_id, ClientId=client_id, UseCognitoProvidedValues=True
        )
        ctx.report.created(what)
        return
    ctx.report.exists(what)


def _check_given(ctx: Context, site_url: str) -> None:
    s = ctx.settings
    pool_id, client_id = str(s.cognito_user_pool_id), str(s.cognito_client_id)
    try:
        client = ctx.clients.cognito.describe_user_pool_client(
            UserPoolId=pool_id, ClientId=client_id
        )["UserPoolClient"]
    except ClientError as error:
        raise DeployError(f"COGNITO_USER_POOL_ID/COGNITO_CLIENT_ID: {error}") from error
    ctx.report.line("✓", f"Cognito user pool {pool_id}, client {client_id} (given)")
    missing = [
        u
        for u in client_settings(ctx, site_url)["CallbackURLs"]
        if u not in client.get("CallbackURLs", [])
    ]
    if missing:
        ctx.report.warn(f"add these callback URLs to client {client_id}: {', '.join(missing)}")
    ctx.outputs.cognito_user_pool_id, ctx.outputs.cognito_client_id = pool_id, client_id
    ctx.outputs.cognito_discovery_url = discovery_url(s.region, pool_id)


def _set_outputs(ctx: Context, pool_id: str, client_id: str) -> None:
    region = ctx.settings.region
    ctx.outputs.cognito_user_pool_id, ctx.outputs.cognito_client_id = pool_id, client_id
    ctx.outputs.cognito_discovery_url = discovery_url(region, pool_id)
    ctx.outputs.cognito_domain_url = (
        f"https://{ctx.names.cognito_domain}.auth.{region}.amazoncognito.com"
    )


def _domain(ctx: Context) -> dict[str, Any]:
    answer = ctx.clients.cognito.describe_user_pool_domain(Domain=ctx.names.cognito_domain)
    found: dict[str, Any] = answer.get("DomainDescription") or {}
    return found if found.get("UserPoolId") else {}


def _plain(value: Any) -> Any:
    """Lists compared as sets: Cognito may give them back in another order."""
    return sorted(value) if isinstance(value, list) else value
