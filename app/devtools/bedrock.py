"""Amazon Bedrock's side of the scripted model: its event-stream framing and SigV4 checking.

Bedrock's `InvokeModelWithResponseStream` answers in `application/vnd.amazon.eventstream`
frames, each carrying one Messages API event as `{"bytes": base64(json)}`. Every request must
be SigV4-signed for the `bedrock` service; the stand-in verifies signatures the way AWS does, so
a relay that signs wrongly fails here as it would there.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import struct
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_STRING = 7  # event-stream header value type


def frame(payload: bytes, headers: Mapping[str, str]) -> bytes:
    """One event-stream message: prelude, headers, payload, and both CRC32 checksums."""
    encoded = b"".join(
        struct.pack("!B", len(name))
        + name.encode()
        + struct.pack("!BH", _STRING, len(value))
        + value.encode()
        for name, value in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def chunk(event: dict[str, Any]) -> bytes:
    """A Messages API event as Bedrock streams it."""
    data = base64.b64encode(json.dumps(event).encode()).decode()
    return frame(
        json.dumps({"bytes": data}).encode(),
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
    )


def signature_problem(
    method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: Credentials
) -> str | None:
    """None when the request carries a valid SigV4 signature by `credentials`; else why not."""
    authorization = headers.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        return "missing SigV4 Authorization header"
    fields = dict(
        part.strip().split("=", 1)
        for part in authorization.removeprefix("AWS4-HMAC-SHA256 ").split(",")
    )
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or scope[0] != credentials.access_key or scope[3] != "bedrock":
        return f"unexpected credential scope {fields.get('Credential')!r}"
    signed = fields.get("SignedHeaders", "").split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={h: headers.get(h, "") for h in signed}
    )
    request.context["timestamp"] = headers.get("x-amz-date", "")
    signer = SigV4Auth(credentials, "bedrock", scope[2])
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, fields.get("Signature", "")):
        return "The request signature we calculated does not match the signature you provided."
    return None
