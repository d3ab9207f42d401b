"""One user's part of the S3 bucket (`user_data/<user>/`), with credentials that reach only it.

Many files at once go through `app.workspace.transfer` (kept-alive connections, requests in
parallel); single requests (manifests, deletions, listings, versions) and uploads in parts
through boto3. When `S3_USER_ROLE_ARN` is set, every user's transfers use credentials from
AssumeRole with a session policy that allows only that user's prefix, so a bug or a
compromised process serving one user cannot read another's data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.errors import AppError
from app.workspace.snapshot import file_sha256
from app.workspace.transfer import CONNECTIONS, Endpoint, Signer, TransferError, Transfers

logger = logging.getLogger(__name__)
MULTIPART = 16 * 1024 * 1024  # files this large go in parts of this size
Progress = Callable[[int, int], None]  # files done, bytes done (this transfer)


class StorageError(AppError):
    """S3 could not be reached or refused; local work is kept and the sync is retried."""

    status = 503
    code = "storage_unavailable"


@dataclass(frozen=True)
class BucketConfig:
    bucket: str
    endpoint_url: str | None = None
    region: str | None = None
    user_role_arn: str | None = None  # assumed per user, narrowed to the user's prefix
    connections: int = CONNECTIONS


@dataclass(frozen=True)
class Keys:
    access_key: str
    secret_key: str
    token: str | None = None
    expires: float = float("inf")


def user_prefix(user_key: str) -> str:
    return f"user_data/{user_key}/"


def prefix_policy(bucket: str, prefix: str) -> dict[str, Any]:
    """A session policy that allows objects under `prefix` and listing only that prefix."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                "Resource": f"arn:aws:s3:::{bucket}/{prefix}*",
            },
            {
                "Effect": "Allow",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": f"arn:aws:s3:::{bucket}",
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
        ],
    }


class KeyRing:
    """Credentials per user: scoped by AssumeRole when a role is configured, else the app's."""

    def __init__(self, config: BucketConfig) -> None:
        self.config = config
        self._scoped: dict[str, Keys] = {}

    def for_user(self, user_key: str) -> Keys:
        if not self.config.user_role_arn:
            return _default_keys()
        keys = self._scoped.get(user_key)
        if keys is None or keys.expires - time.time() < 300:
            keys = self._assume(user_key)
            self._scoped[user_key] = keys
        return keys

    def _assume(self, user_key: str) -> Keys:
        policy = prefix_policy(self.config.bucket, user_prefix(user_key))
        try:
            answer = boto3.client("sts", region_name=self.config.region).assume_role(
                RoleArn=str(self.config.user_role_arn),
                RoleSessionName=f"agent-web-{user_key}"[:64],
                Policy=json.dumps(policy),
                DurationSeconds=3600,
            )
        except (BotoCoreError, ClientError) as error:
            raise StorageError(f"Could not get storage credentials: {error}") from error
        found = answer["Credentials"]
        return Keys(
            found["AccessKeyId"],
            found["SecretAccessKey"],
            found["SessionToken"],
            found["Expiration"].timestamp(),
        )


def _default_keys() -> Keys:
    found = boto3.Session().get_credentials()
    if found is None:
        raise StorageError("No AWS credentials for S3 (set them, or give the machine a role).")
    frozen = found.get_frozen_credentials()
    return Keys(frozen.access_key, frozen.secret_key, frozen.token)


class Bucket:
    """The bucket as seen with one user's keys."""

    def __init__(self, config: BucketConfig, keys: Keys) -> None:
        self.config = config
        self.keys = keys
        self.client = boto3.client(
            "s3",
            endpoint_url=config.endpoint_url,
            region_name=config.region,
            aws_access_key_id=keys.access_key,
            aws_secret_access_key=keys.secret_key,
            aws_session_token=keys.token,
            config=Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=32),
        )

    # --- small requests (boto3) -------------------------------------------------------------

    def get_file(self, key: str, destination: Path) -> bool:
        """Download one object (a manifest) to `destination`; False when there is none."""
        try:
            body = self.client.get_object(Bucket=self.config.bucket, Key=key)["Body"]
            with destination.open("wb") as out:
                shutil.copyfileobj(body, out, 1024 * 1024)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise _storage_error(error) from error
        except BotoCoreError as error:
            raise _storage_error(error) from error
        return True

    def put_file(self, key: str, source: Path) -> None:
        """Upload one file (a manifest; in parts when large)."""
        try:
            self.client.upload_file(str(source), self.config.bucket, key)
        except (BotoCoreError, ClientError) as error:
            raise _storage_error(error) from error

    def delete(self, keys: Iterable[str]) -> None:
        batch: list[dict[str, str]] = []
        for key in [*keys, None]:
            if key is not None:
                batch.append({"Key": key})
            if batch and (key is None or len(batch) == 1000):
                try:
                    self.client.delete_objects(
                        Bucket=self.config.bucket, Delete={"Objects": batch, "Quiet": True}
                    )
                except (BotoCoreError, ClientError) as error:
                    raise _storage_error(error) from error
                batch = []

    def objects(self, prefix: str) -> Iterator[list[tuple[str, int]]]:
        """(key, size) of every object under the prefix, a page (up to 1,000) at a time."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.config.bucket, Prefix=prefix
            )
            for page in pages:
                yield [(item["Key"], int(item["Size"])) for item in page.get("Contents", [])]
        except (BotoCoreError, ClientError) as error:
            raise _storage_error(error) from error

    def fetch_version(self, key: str, sha256: str, destination: str) -> bool:
        """Fetch the version of `key` whose content has this hash (an interrupted backup may
        have put a newer one since); False when the bucket keeps no such version."""
        try:
            answer = self.client.list_object_versions(Bucket=self.config.bucket, Prefix=key)
        except (BotoCoreError, ClientError) as error:
            raise _storage_error(error) from error
        versions = [v for v in answer.get("Versions", []) if v["Key"] == key]
        for version in versions:
            try:
                body = self.client.get_object(
                    Bucket=self.config.bucket, Key=key, VersionId=version["VersionId"]
                )["Body"]
                with open(destination, "wb") as out:
                    shutil.copyfileobj(body, out, 1024 * 1024)
            except (BotoCoreError, ClientError) as error:
                raise _storage_error(error) from error
            if file_sha256(destination) == sha256:
                return True
        return False

    # --- many files (app.workspace.transfer) -----------------------------------------------

    async def upload(
        self, root: Path, items: Iterator[tuple[str, str]], progress: Progress
    ) -> None:
        """Send each (path under `root`, key); files of `MULTIPART` bytes or more go in parts."""
        try:
            await self._transfers().upload(root, items, progress)
        except TransferError as error:
            raise _storage_error(error) from error

    async def download(self, items: Iterator[tuple[str, str, str]], progress: Progress) -> None:
        """Fetch each (key, new local file, expected SHA-256 or ""); see `Transfers.download`."""
        try:
            await self._transfers().download(items, progress)
        except TransferError as error:
            raise _storage_error(error) from error

    def _transfers(self) -> Transfers:
        service = str(self.client.meta.endpoint_url)
        region = self.client.meta.region_name or "us-east-1"
        on_aws = (urlsplit(service).hostname or "").endswith(".amazonaws.com")
        endpoint = Endpoint.of(self.config.bucket, service, region, path_style=not on_aws)
        signer = Signer(self.keys.access_key, self.keys.secret_key, self.keys.token, region)
        return Transfers(endpoint, signer, self.config.connections, self._in_parts, MULTIPART)

    async def _in_parts(self, fd: int, key: str) -> None:
        await asyncio.to_thread(self._parts, fd, key)

    def _parts(self, fd: int, key: str) -> None:
        parts = TransferConfig(multipart_threshold=MULTIPART, multipart_chunksize=MULTIPART)
        try:
            with os.fdopen(os.dup(fd), "rb") as source:
                self.client.upload_fileobj(source, self.config.bucket, key, Config=parts)
        except (BotoCoreError, ClientError) as error:
            raise TransferError(str(error)) from error


def _storage_error(error: Exception) -> StorageError:
    return StorageError(f"S3 refused or could not be reached: {error}")
