"""The order of things: `up` applies each step (each one idempotent: it creates what is missing,
updates what differs and says so, and leaves the rest alone), `down` undoes them in reverse,
`status` looks at each."""

from __future__ import annotations

from deploy import (
    amplify,
    bucket,
    cognito,
    database,
    ecr,
    iam,
    identity,
    image,
    models,
    policy,
    probe,
    runtime,
)
from deploy.context import Context, DeployError
from deploy.names import runtime_urls
from deploy.outputs import Outputs


def up(ctx: Context, given_image: str | None = None) -> Outputs:
    s, names, out = ctx.settings, ctx.names, ctx.outputs
    ecr.ensure(ctx)
    db = database.ensure(ctx)  # a new cluster comes up while the image is built
    out.image = image.ensure(ctx, image.APP_IMAGE, given_image or s.image)
    bucket.ensure(ctx)
    site_url = amplify.ensure(ctx)
    cognito.ensure(ctx, site_url)
    github = identity.ensure_github(ctx)
    secret = ((github or {}).get("clientSecretArn") or {}).get("secretArn")
    execution = policy.execution_policy(
        names,
        repositories=[policy.repository_arn(out.image, names.partition)],
        models=models.arns(ctx),
        github_provider=names.credential_provider if github else None,
        github_secret_arn=secret,
        database_cluster=db.cluster_arn,
        database_role=db.role,
    )
    out.execution_role_arn = iam.ensure_role(
        ctx, names.execution_role, policy.runtime_trust(names), execution
    )
    out.user_role_arn = iam.ensure_role(
        ctx, names.user_role, policy.user_data_trust(names), policy.user_data_policy(names)
    )
    if github:
        out.github_return_url = site_url + s.github_return_path
    wanted = runtime.configuration(
        ctx,
        image=out.image,
        role_arn=out.execution_role_arn,
        pool_id=str(out.cognito_user_pool_id),
        client_id=str(out.cognito_client_id),
        environment=environment(ctx, db),
        lifecycle=(s.idle_timeout, s.max_lifetime),
    )
    database.wait_ready(ctx, db)  # before anything can connect to it
    found = runtime.ensure(ctx, names.runtime, wanted)
    out.runtime_id, out.runtime_arn = str(found["agentRuntimeId"]), str(found["agentRuntimeArn"])
    out.websocket_url, out.invocations_url = runtime_urls(s.region, out.runtime_arn)
    if out.github_return_url:
        identity.ensure_return_urls(ctx, found, [out.github_return_url])
    out.write(s.outputs)  # the site's build reads it: written before the site goes up
    ctx.report.note(f"outputs written to {s.outputs}")
    amplify.deploy(ctx, str(out.amplify_app_id), s.site_dir)
    out.write(s.outputs)
    ctx.report.note(f"site: {out.site_url}")
    ctx.report.summary()
    return out


def environment(ctx: Context, db: database.Database) -> dict[str, str]:
    """The runtime's environment: where things are, never a secret (the runtime's role, the
    user-data role and AgentCore Identity give access; the app signs its database tokens)."""
    s, out = ctx.settings, ctx.outputs
    env = {
        "AUTH_MODE": "cognito",
        "COGNITO_REGION": s.region,
        "COGNITO_USER_POOL_ID": str(out.cognito_user_pool_id),
        "COGNITO_CLIENT_ID": str(out.cognito_client_id),
        "AWS_REGION": s.region,
        "S3_BUCKET": ctx.names.bucket,
        "S3_USER_ROLE_ARN": str(out.user_role_arn),
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "ANTHROPIC_MODEL": s.main_model,
        "ANTHROPIC_SMALL_FAST_MODEL": s.fast_model,
        "MODELS": ",".join(s.models),
        "DEMO_MODEL": "off",
        **db.environment(),
    }
    if s.allowed_email_domains:
        env["ALLOWED_EMAIL_DOMAINS"] = ",".join(s.allowed_email_domains)
    if out.github_return_url:
        env["GITHUB_PROVIDER_NAME"] = str(out.github_provider)
        env["GITHUB_RETURN_URL"] = out.github_return_url
    clash = sorted(set(env) & set(s.runtime_env))
    if clash:
        raise DeployError(f"runtime_env: {', '.join(clash)} are set by the deploy itself")
    return {**env, **s.runtime_env}


def down(ctx: Context, delete_data: bool = False) -> None:
    names = ctx.names
    probe.down(ctx)
    runtime_id = runtime.remove(ctx, names.runtime)
    if runtime_id:
        identity.remove_workload_identity(ctx, runtime_id)
    identity.remove_github(ctx)
    iam.remove_role(ctx, names.user_role)
    iam.remove_role(ctx, names.execution_role)
    database.remove(ctx, delete_data)
    cognito.remove(ctx)
    amplify.remove(ctx)
    bucket.remove(ctx, delete_data)
    ecr.remove(ctx, delete_data)
    if ctx.settings.outputs.exists():
        ctx.settings.outputs.unlink()
        ctx.report.note(f"removed {ctx.settings.outputs}")
    ctx.report.summary()


def status(ctx: Context) -> None:
    names = ctx.names
    ecr.status(ctx)
    bucket.status(ctx)
    database.status(ctx)
    cognito.status(ctx)
    identity.status(ctx)
    for role in (names.execution_role, names.user_role):
        iam.status(ctx, role)
    runtime.status(ctx, names.runtime)
    amplify.status(ctx)
    runtime.status(ctx, names.probe_runtime)
