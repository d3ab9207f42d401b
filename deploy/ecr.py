"""The ECR repository the runtime pulls from: immutable tags (each tag names the content it
was built from), scanned on push, old images expired so storage stays flat."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import not_found, same_json
from deploy.context import Context
from deploy.names import TAG_KEY

KEEP_IMAGES = 20
LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "description": f"keep the newest {KEEP_IMAGES} images",
            "selection": {
                "tagStatus": "any",
                "countType": "imageCountMoreThan",
                "countNumber": KEEP_IMAGES,
            },
            "action": {"type": "expire"},
        }
    ]
}


def ensure(ctx: Context) -> str:
    """The repository's URI, creating the repository when missing."""
    ecr, name = ctx.clients.ecr, ctx.names.repository
    what = f"ECR repository {name}"
    found = find(ctx)
    new = found is None
    if found is None:
        found = ecr.create_repository(
            repositoryName=name,
            imageTagMutability="IMMUTABLE",
            imageScanningConfiguration={"scanOnPush": True},
            encryptionConfiguration={"encryptionType": "AES256"},
            tags=[{"Key": k, "Value": v} for k, v in ctx.names.tags.items()],
        )["repository"]
    lifecycle = f"keeps the newest {KEEP_IMAGES} images"
    stale = not same_json(_lifecycle(ecr, name) or {}, LIFECYCLE)
    if stale:
        ecr.put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(LIFECYCLE))
    if new:
        ctx.report.created(what, lifecycle)
    elif stale:
        ctx.report.updated(what, lifecycle)
    else:
        ctx.report.exists(what)
    uri = str(found["repositoryUri"])
    ctx.outputs.repository_uri = uri
    return uri


def find(ctx: Context) -> dict[str, Any] | None:
    try:
        answer = ctx.clients.ecr.describe_repositories(repositoryNames=[ctx.names.repository])
    except ClientError as error:
        if not_found(error):
            return None
        raise
    repositories: list[dict[str, Any]] = answer["repositories"]
    return repositories[0] if repositories else None


def has_image(ctx: Context, tag: str) -> bool:
    try:
        ctx.clients.ecr.describe_images(
            repositoryName=ctx.names.repository, imageIds=[{"imageTag": tag}]
        )
    except ClientError as error:
        if not_found(error):
            return False
        raise
    return True


def delete_images(ctx: Context, tag_prefix: str) -> int:
    """Delete the images whose tags start with `tag_prefix` (the probe's); returns how many."""
    ecr, name = ctx.clients.ecr, ctx.names.repository
    if find(ctx) is None:
        return 0
    ids = [
        {"imageTag": tag}
        for page in ecr.get_paginator("list_images").paginate(repositoryName=name)
        for image in page["imageIds"]
        if (tag := image.get("imageTag", "")).startswith(tag_prefix)
    ]
    for start in range(0, len(ids), 100):
        ecr.batch_delete_image(repositoryName=name, imageIds=ids[start : start + 100])
    return len(ids)


def remove(ctx: Context, delete_data: bool) -> None:
    what = f"ECR repository {ctx.names.repository}"
    found = find(ctx)
    if found is None:
        ctx.report.absent(what)
    elif not delete_data:
        ctx.report.kept(what, "its images stay; add --delete-data to delete it")
    elif not _ours(ctx, str(found["repositoryArn"])):
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
    else:
        ctx.clients.ecr.delete_repository(repositoryName=ctx.names.repository, force=True)
        ctx.report.deleted(what)


def status(ctx: Context) -> None:
    found = find(ctx)
    what = f"ECR repository {ctx.names.repository}"
    ctx.report.state(what, "absent" if found is None else str(found["repositoryUri"]))


def _ours(ctx: Context, arn: str) -> bool:
    tags = ctx.clients.ecr.list_tags_for_resource(resourceArn=arn).get("tags", [])
    return any(t["Key"] == TAG_KEY and t["Value"] == ctx.names.prefix for t in tags)


def _lifecycle(ecr: Any, name: str) -> dict[str, Any] | None:
    try:
        text = ecr.get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]
    except ClientError as error:
        if not_found(error):
            return None
        raise
    parsed: dict[str, Any] = json.loads(text)
    return parsed
