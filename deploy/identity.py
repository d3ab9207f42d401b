"""AgentCore Identity for GitHub: the OAuth2 credential provider (vendor GithubOauth2) and the
return URLs on the runtime's workload identity.

GitHub redirects the user to the provider's own callback URL (printed here: register it in the
GitHub OAuth app); AgentCore then sends the browser to a return URL of the app, which must be
listed on the runtime's workload identity (named after the runtime's id).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import code, not_found
from deploy.context import Context
from deploy.names import TAG_KEY

VENDOR = "GithubOauth2"


def ensure_github(ctx: Context) -> dict[str, Any] | None:
    """The provider (GetOauth2CredentialProvider's answer), or None without GitHub settings."""
    s, identity = ctx.settings, ctx.clients.identity
    name = ctx.names.credential_provider
    what = f"GitHub credential provider {name}"
    found = find_github(ctx)
    if not (s.github_client_id and s.github_client_secret):
        if found is None:
            ctx.report.skipped(what, "set GITHUB_CLIENT_ID and GITHUB_CLIENT_SECRET")
            return None
        ctx.report.exists(what, "kept as it is: GITHUB_CLIENT_ID is not set")
    else:
        config = {
            "githubOauth2ProviderConfig": {
                "clientId": s.github_client_id,
                "clientSecret": s.github_client_secret,
            }
        }
        if found is None:
            identity.create_oauth2_credential_provider(
                name=name,
                credentialProviderVendor=VENDOR,
                oauth2ProviderConfigInput=config,
                tags=ctx.names.tags,
            )
            ctx.report.created(what)
        elif _client_id(found) != s.github_client_id:
            identity.update_oauth2_credential_provider(
                name=name, credentialProviderVendor=VENDOR, oauth2ProviderConfigInput=config
            )
            ctx.report.updated(what, "client id and secret")
        else:
            ctx.report.exists(what, "its secret is not compared")
        found = find_github(ctx)
    assert found is not None
    ctx.outputs.github_provider = name
    ctx.outputs.github_callback_url = found.get("callbackUrl")
    ctx.report.note(f"GitHub OAuth app callback URL: {found.get('callbackUrl', '(not reported)')}")
    return found


def find_github(ctx: Context) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = ctx.clients.identity.get_oauth2_credential_provider(
            name=ctx.names.credential_provider
        )
    except ClientError as error:
        if not_found(error):
            return None
        raise
    return found


def ensure_return_urls(ctx: Context, runtime: dict[str, Any], urls: list[str]) -> None:
    name = workload_identity(runtime)
    what = f"workload identity {name} return URLs"
    found = ctx.clients.identity.get_workload_identity(name=name)
    if sorted(found.get("allowedResourceOauth2ReturnUrls") or []) == sorted(urls):
        ctx.report.exists(what)
        return
    ctx.clients.identity.update_workload_identity(name=name, allowedResourceOauth2ReturnUrls=urls)
    ctx.report.updated(what, ", ".join(urls))


def workload_identity(runtime: dict[str, Any]) -> str:
    """The runtime's workload identity name: the last part of its ARN (the runtime's id)."""
    arn = str((runtime.get("workloadIdentityDetails") or {}).get("workloadIdentityArn", ""))
    return arn.rsplit("/", 1)[-1] or str(runtime["agentRuntimeId"])


def remove_workload_identity(ctx: Context, name: str) -> None:
    """After its runtime is gone: a workload identity left behind keeps its return URLs."""
    what = f"workload identity {name}"
    try:
        ctx.clients.identity.get_workload_identity(name=name)
    except ClientError as error:
        if not_found(error):
            ctx.report.absent(what)
            return
        raise
    ctx.clients.identity.delete_workload_identity(name=name)
    ctx.report.deleted(what)


def remove_github(ctx: Context) -> None:
    what = f"GitHub credential provider {ctx.names.credential_provider}"
    found = find_github(ctx)
    if found is None:
        ctx.report.absent(what)
        return
    if _tag(ctx, str(found["credentialProviderArn"])) not in (ctx.names.prefix, None):
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
        return
    ctx.clients.identity.delete_oauth2_credential_provider(name=ctx.names.credential_provider)
    ctx.report.deleted(what)


def status(ctx: Context) -> None:
    found = find_github(ctx)
    what = f"GitHub credential provider {ctx.names.credential_provider}"
    ctx.report.state(what, "absent" if found is None else str(found.get("status", "present")))


def _tag(ctx: Context, arn: str) -> str | None:
    """The provider's deployment tag; None when AgentCore will not say (providers' ARNs have
    come in more than one form, and tagging them is recent): the name, made by `up`, decides."""
    try:
        tags = ctx.clients.identity.list_tags_for_resource(resourceArn=arn).get("tags", {})
    except ClientError as error:
        if code(error) not in ("ValidationException", "AccessDeniedException"):
            raise
        return None
    return str(tags.get(TAG_KEY, ""))


def _client_id(found: dict[str, Any]) -> str | None:
    config = (found.get("oauth2ProviderConfigOutput") or {}).get("githubOauth2ProviderConfig")
    return None if config is None else config.get("clientId")
