"""One user's part of the S3 bucket (`user_data/<user>/`), with credentials that reach only it.

Bulk transfers run through s5cmd (a maintained S3 tool, many parallel requests; several times
faster than boto3 on thousands of small files); small requests (manifests, deletes, versions)
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
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.errors import AppError
from app.workspace.snapshot import file_sha256

logger = logging.getLogger(__name__)
FEW = 16  # transfers this small go through boto3 in threads, not through s5cmd
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
    workers: int = 256  # s5cmd's own default: measured fastest on thousands of small files


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
        self._one("upload_file", str(source), key)

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

    # --- bulk transfers (s5cmd) -------------------------------------------------------------

    async def upload(
        self, items: Iterable[tuple[str, str]], count: int, progress: Progress
    ) -> None:
        """Send each local file to its key (large files go in parts). A handful (`count`) go
        straight from here: starting s5cmd would take longer than sending them."""
        await self._transfer("upload_file", iter(items), count, progress)

    async def download(
        self, items: Iterable[tuple[str, str]], count: int, progress: Progress
    ) -> None:
        """Fetch each key into its (new) local file."""
        await self._transfer("download_file", iter(items), count, progress)

    async def upload_tree(self, folder: Path, prefix: str, progress: Progress) -> None:
        """Send every file under `folder` to `prefix` + its relative path, in one listing-free
        sweep (much faster than one command per file when most files go)."""
        await self._s5cmd(["cp", f"{folder}/*", self._url(prefix)], progress)

    async def download_tree(self, prefix: str, folder: Path, progress: Progress) -> None:
        """Fetch every object under `prefix` into `folder`, but none whose name holds `..`
        (s5cmd joins names to the folder as they are; the caller fetches those by key)."""
        await self._s5cmd(
            ["cp", "--exclude", "*..*", self._url(prefix) + "*", f"{folder}/"], progress
        )

    async def _transfer(
        self, method: str, items: Iterator[tuple[str, str]], count: int, progress: Progress
    ) -> None:
        if count <= FEW:
            await asyncio.to_thread(self._few, method, list(items), progress)
            return
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as commands:
            written, odd = await asyncio.to_thread(self._commands, method, items, commands)
        try:
            if written:
                await self._s5cmd(["run", commands.name], progress)
        finally:
            os.unlink(commands.name)
        for first, second in odd:
            await asyncio.to_thread(self._one, method, first, second)

    def _commands(
        self, method: str, items: Iterator[tuple[str, str]], out: IO[str]
    ) -> tuple[int, list[tuple[str, str]]]:
        """Write s5cmd's command file; returns how many lines, and the items it cannot carry."""
        written = 0
        odd: list[tuple[str, str]] = []
        for first, second in items:
            if not (_plain(first) and _plain(second)):
                odd.append((first, second))
                continue
            if method == "upload_file":
                source, target = first, self._url(second)
            else:
                source, target = self._url(first), second
            out.write(f"cp --raw {_quote(source)} {_quote(target)}\n")
            written += 1
        return written, odd

    def _few(self, method: str, items: list[tuple[str, str]], progress: Progress) -> None:
        done = [0, 0]
        counting = threading.Lock()

        def move(item: tuple[str, str]) -> None:
            self._one(method, *item)
            size = os.stat(item[0] if method == "upload_file" else item[1]).st_size
            with counting:
                done[0] += 1
                done[1] += size
                progress(done[0], done[1])

        with ThreadPoolExecutor(max_workers=FEW) as pool:
            list(pool.map(move, items))

    def _one(self, method: str, first: str, second: str) -> None:
        try:
            if method == "upload_file":
                self.client.upload_file(first, self.config.bucket, second)
            else:
                self.client.download_file(self.config.bucket, first, second)
        except (BotoCoreError, ClientError) as error:
            raise _storage_error(error) from error

    def _url(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    async def _s5cmd(self, command: list[str], progress: Progress) -> None:
        argv = [_s5cmd_path(), "--json", "--numworkers", str(self.config.workers)]
        if self.config.endpoint_url:
            argv += ["--endpoint-url", self.config.endpoint_url]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ACCESS_KEY_ID": self.keys.access_key,
            "AWS_SECRET_ACCESS_KEY": self.keys.secret_key,
            "AWS_REGION": self.config.region or "us-east-1",
        }
        if self.keys.token:
            env["AWS_SESSION_TOKEN"] = self.keys.token
        process = await asyncio.create_subprocess_exec(
            *argv,
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        assert process.stdout is not None and process.stderr is not None
        errors: deque[str] = deque(maxlen=5)  # the last few; s5cmd reports each failed file
        try:
            await asyncio.gather(
                _follow(process.stdout, progress, errors), _follow(process.stderr, None, errors)
            )
            await process.wait()
        finally:
            if process.returncode is None:  # cancelled (shutdown): the transfer stops too
                process.kill()
                await process.wait()
        if errors or process.returncode:
            detail = errors[-1] if errors else f"s5cmd exited with {process.returncode}"
            if all("no object found" in e for e in errors) and errors:
                return  # an empty listing or sweep: nothing there, nothing to do
            raise StorageError(f"The transfer to S3 failed: {detail}")


async def _follow(
    stream: asyncio.StreamReader, progress: Progress | None, errors: deque[str]
) -> None:
    """Count finished transfers from s5cmd's JSON lines (stdout); keep what it says went
    wrong (either stream). Read as it comes, so s5cmd never blocks on a full pipe."""
    files = size = 0
    async for raw in stream:
        try:
            line = json.loads(raw)
        except ValueError:
            text = raw.decode(errors="replace").strip()
            if text:
                errors.append(text[-300:])
            continue
        if not isinstance(line, dict):
            continue
        if line.get("success") and progress is not None:
            files += 1
            size += int((line.get("object") or {}).get("size") or 0)
            progress(files, size)
        elif line.get("error"):
            errors.append(str(line["error"])[-300:])


def _s5cmd_path() -> str:
    found = shutil.which("s5cmd", path=str(Path(sys.executable).parent)) or shutil.which("s5cmd")
    if not found:
        raise StorageError("s5cmd is not installed (it comes with the app's Python packages).")
    return found


def _quote(text: str) -> str:
    """A word for s5cmd's command files (double-quoted; see `_plain`)."""
    return '"' + text + '"'


def _plain(text: str) -> bool:
    """Can s5cmd's command files carry this name? (No quote or line break in it.)"""
    return not any(c in text for c in '"\n\r\\')


def _storage_error(error: Exception) -> StorageError:
    return StorageError(f"S3 refused or could not be reached: {error}")
