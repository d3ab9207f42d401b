"""The boto3 clients the deploy uses, passed in (tests point them at moto or at stubs), and
small helpers for AWS's many ways of saying "not found"."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

NOT_FOUND = {
    "NoSuchEntity",
    "NoSuchBucket",
    "NotFound",
    "404",
    "NotFoundException",
    "ResourceNotFoundException",
    "RepositoryNotFoundException",
    "ImageNotFoundException",
    "LifecyclePolicyNotFoundException",
    "NoSuchLifecycleConfiguration",
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchBucketPolicy",
    "NoSuchTagSet",
}


@dataclass(frozen=True)
class Clients:
    """One client per service. `runtimes` and `identity` are the same AgentCore control-plane
    client in a real deployment; they are apart so a test can stub one and not the other."""

    sts: Any
    ecr: Any
    s3: Any
    iam: Any
    cognito: Any
    logs: Any
    runtimes: Any
    identity: Any
    amplify: Any
    bedrock: Any
    dsql: Any

    @classmethod
    def from_session(cls, session: boto3.Session) -> Clients:
        config = Config(retries={"mode": "standard", "max_attempts": 8})

        def client(name: str) -> Any:
            return session.client(name, config=config)

        control = client("bedrock-agentcore-control")
        return cls(
            sts=client("sts"),
            ecr=client("ecr"),
            s3=client("s3"),
            iam=client("iam"),
            cognito=client("cognito-idp"),
            logs=client("logs"),
            runtimes=control,
            identity=control,
            amplify=client("amplify"),
            bedrock=client("bedrock"),
            dsql=client("dsql"),
        )


def code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def not_found(error: ClientError) -> bool:
    return code(error) in NOT_FOUND


def same_json(left: Any, right: Any) -> bool:
    """Policies come back from AWS as strings or parsed, keys in any order."""

    def canonical(value: Any) -> str:
        if isinstance(value, str):
            value = json.loads(value)
        return json.dumps(value, sort_keys=True)

    return canonical(left) == canonical(right)


def contains(found: Any, wanted: Any) -> bool:
    """Does `found` (what AWS answers) hold everything in `wanted`? Services add fields of
    their own to what they give back; only the ones we set are compared."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(
            key in found and contains(found[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(found, list)
            and len(found) == len(wanted)
            and all(contains(f, w) for f, w in zip(found, wanted, strict=True))
        )
    return bool(found == wanted)
