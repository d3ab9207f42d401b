"""The workspace bucket `<prefix>-<region>-<account>`: private, encrypted, TLS only, versioned
(a restore after an interrupted backup fetches the versions the last manifest names), with old
versions expired after a few days so the cost stays flat."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deploy.aws import contains, not_found
from deploy.context import Context
from deploy.names import TAG_KEY

PRIVATE = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {
    "Rules": [
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
            "BucketKeyEnabled": True,
        }
    ]
}


@dataclass(frozen=True)
class Setting:
    """One bucket setting: how to read it (None when unset), its wanted value, how to set it."""

    name: str
    read: Callable[[Any, str], Any]
    wanted: Any
    write: Callable[[Any, str, Any], None]


def lifecycle(days: int) -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ID": "expire-noncurrent-versions",
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                "NoncurrentVersionExpiration": {"NoncurrentDays": days},
                "Expiration": {"ExpiredObjectDeleteMarker": True},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
        ]
    }


def tls_only(bucket: str, partition: str = "aws") -> dict[str, Any]:
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TlsOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def settings(ctx: Context) -> list[Setting]:
    bucket = ctx.names.bucket
    return [
        Setting(
            "public access block",
            lambda s3, b: (_get(lambda: s3.get_public_access_block(Bucket=b)) or {}).get(
                "PublicAccessBlockConfiguration"
            ),
            PRIVATE,
            lambda s3, b, v: s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=v),
        ),
        Setting(
            "encryption (SSE-S3)",
            lambda s3, b: _rules(_get(lambda: s3.get_bucket_encryption(Bucket=b))),
            ENCRYPTION,
            lambda s3, b, v: s3.put_bucket_encryption(
                Bucket=b, ServerSideEncryptionConfiguration=v
            ),
        ),
        Setting(
            "versioning",
            lambda s3, b: s3.get_bucket_versioning(Bucket=b).get("Status"),
            "Enabled",
            lambda s3, b, v: s3.put_bucket_versioning(
                Bucket=b, VersioningConfiguration={"Status": v}
            ),
        ),
        Setting(
            f"lifecycle (old versions expire after {ctx.settings.noncurrent_version_days} days)",
            lambda s3, b: _rules(_get(lambda: s3.get_bucket_lifecycle_configuration(Bucket=b))),
            lifecycle(ctx.settings.noncurrent_version_days),
            lambda s3, b, v: s3.put_bucket_lifecycle_configuration(
                Bucket=b, LifecycleConfiguration=v
            ),
        ),
        Setting(
            "policy (TLS only)",
            lambda s3, b: _policy(_get(lambda: s3.get_bucket_policy(Bucket=b))),
            tls_only(bucket, ctx.names.partition),
            lambda s3, b, v: s3.put_bucket_policy(Bucket=b, Policy=json.dumps(v)),
        ),
        Setting(
            "tags",
            lambda s3, b: _tags(_get(lambda: s3.get_bucket_tagging(Bucket=b))),
            ctx.names.tags,
            lambda s3, b, v: s3.put_bucket_tagging(
                Bucket=b, Tagging={"TagSet": [{"Key": k, "Value": x} for k, x in v.items()]}
            ),
        ),
    ]


def ensure(ctx: Context) -> str:
    s3, bucket = ctx.clients.s3, ctx.names.bucket
    what = f"S3 bucket {bucket}"
    new = not exists(ctx)
    if new:
        where = {}
        if ctx.names.region != "us-east-1":  # the one region S3 refuses to be told
            where = {"CreateBucketConfiguration": {"LocationConstraint": ctx.names.region}}
        s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced", **where)
        s3.get_waiter("bucket_exists").wait(Bucket=bucket)
    changed = []
    for setting in settings(ctx):
        if not contains(setting.read(s3, bucket), setting.wanted):
            setting.write(s3, bucket, setting.wanted)
            changed.append(setting.name)
    if new:
        ctx.report.created(what, ", ".join(changed))
    elif changed:
        ctx.report.updated(what, ", ".join(changed))
    else:
        ctx.report.exists(what)
    ctx.outputs.bucket = bucket
    return bucket


def exists(ctx: Context) -> bool:
    try:
        ctx.clients.s3.head_bucket(Bucket=ctx.names.bucket, ExpectedBucketOwner=ctx.names.account)
    except ClientError as error:
        if not_found(error):
            return False
        raise
    return True


def remove(ctx: Context, delete_data: bool) -> None:
    what = f"S3 bucket {ctx.names.bucket}"
    if not exists(ctx):
        ctx.report.absent(what)
    elif not delete_data:
        ctx.report.kept(what, "the users' workspaces stay; add --delete-data to delete it")
    elif (
        _tags(_get(lambda: ctx.clients.s3.get_bucket_tagging(Bucket=ctx.names.bucket))).get(TAG_KEY)
        != ctx.names.prefix
    ):
        ctx.report.kept(what, f"not tagged {TAG_KEY}={ctx.names.prefix}")
    else:
        _empty(ctx)
        ctx.clients.s3.delete_bucket(Bucket=ctx.names.bucket)
        ctx.report.deleted(what)


def status(ctx: Context) -> None:
    what = f"S3 bucket {ctx.names.bucket}"
    if not exists(ctx):
        ctx.report.state(what, "absent")
        return
    s3 = ctx.clients.s3
    wrong = [s.name for s in settings(ctx) if not contains(s.read(s3, ctx.names.bucket), s.wanted)]
    ctx.report.state(what, "ready" if not wrong else "differs: " + ", ".join(wrong))


def _empty(ctx: Context) -> None:
    """Every version and delete marker goes; the TLS-only policy first, as it is about to go
    with the bucket anyway (and would refuse a plain-HTTP test endpoint)."""
    s3, bucket = ctx.clients.s3, ctx.names.bucket
    s3.delete_bucket_policy(Bucket=bucket)
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        doomed = [
            {"Key": item["Key"], "VersionId": item["VersionId"]}
            for kind in ("Versions", "DeleteMarkers")
            for item in page.get(kind, [])
        ]
        if doomed:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed, "Quiet": True})


def _get(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as error:
        if not_found(error):
            return None
        raise


def _rules(answer: Any) -> Any:
    if answer is None:
        return None
    found = answer.get("ServerSideEncryptionConfiguration", answer)
    return {"Rules": found.get("Rules", [])}


def _policy(answer: Any) -> Any:
    return None if answer is None else json.loads(answer["Policy"])


def _tags(answer: Any) -> dict[str, str]:
    return {} if answer is None else {t["Key"]: t["Value"] for t in answer.get("TagSet", [])}
