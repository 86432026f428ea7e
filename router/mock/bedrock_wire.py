"""The wire pieces of the fake AWS Bedrock runtime: event-stream frames, SigV4 verification and AWS's
error answers, written by hand (no botocore) so that the fake checks the router's use of botocore
rather than repeating it.

Frames: prelude (total length, headers length, CRC-32 of those 8 bytes), string headers, the JSON
payload, CRC-32 of everything before it. SigV4: the canonical request is rebuilt from what arrived
(the path as sent, percent-encoded once more as AWS does for every service but S3; the signed headers
with their values trimmed; the body's SHA-256), the key derived from the secret, date, region and
service, and the signature compared; the request time must be within 5 minutes of the fake's clock.
Refusals are AWS's: 403 with ``x-amzn-ErrorType`` and ``{"message": ...}``.
"""

from __future__ import annotations

import binascii
import datetime
import hashlib
import hmac
import re
import struct
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple
from urllib.parse import quote

import msgspec
from aiohttp import web

PREFIX: Final = "/bedrock"
SERVICE: Final = "bedrock"
EVENT_STREAM: Final = "application/vnd.amazon.eventstream"
# The credentials the fake accepts unless a test requires others (the demo sets these).
ACCESS_KEY: Final = "AKIAMOCKBEDROCK00001"
SECRET_KEY: Final = "mock/bedrock+secret/not+a+real+key00000"  # noqa: S105 - the fake's own
SKEW_S: Final = 300.0
CORAL: Final = "http://internal.amazon.com/coral/com.amazon.bedrock/"
CORAL_AUTH: Final = "http://internal.amazon.com/coral/com.amazon.coral.service/"
MISMATCH: Final = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN: Final = "The security token included in the request is invalid."  # noqa: S105
_AUTH: Final = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/"
    r"aws4_request, ?SignedHeaders=(?P<signed>[a-z0-9;\-]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)
_STAMP: Final = "%Y%m%dT%H%M%SZ"


# --- event-stream frames -------------------------------------------------------------------------


def frame(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One event-stream message whose headers are all strings (type 7)."""
    encoded = b"".join(
        struct.pack(">B", len(name)) + name + b"\x07" + struct.pack(">H", len(value)) + value
        for name, value in ((n.encode(), v.encode()) for n, v in headers)
    )
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def event_frame(event_type: str, payload: bytes) -> bytes:
    return frame(
        [(":event-type", event_type), (":content-type", "application/json"), (":message-type", "event")],
        payload,
    )


def exception_frame(exception_type: str, message: str) -> bytes:
    payload = msgspec.json.encode({"message": message})
    return frame(
        [
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
    )


def corrupted(data: bytes) -> bytes:
    """A frame of ``data`` (any bytes) whose message CRC does not match: what a broken proxy delivers."""
    whole = event_frame("contentBlockDelta", data)
    return whole[:-4] + struct.pack(">I", (binascii.crc32(whole[:-4]) + 1) & 0xFFFFFFFF)


# --- errors --------------------------------------------------------------------------------------


def aws_error(
    status: int, name: str, message: str, request_id: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An AWS JSON error: ``x-amzn-ErrorType: <Name>:<coral namespace>`` and ``{"message": ...}``."""
    namespace = CORAL_AUTH if status == 403 and name != "AccessDeniedException" else CORAL
    out = {**(headers or {}), "x-amzn-ErrorType": f"{name}:{namespace}", "x-amzn-RequestId": request_id}
    body = msgspec.json.encode({"message": message})
    return web.Response(status=status, body=body, content_type="application/json", headers=out)


# --- SigV4 ---------------------------------------------------------------------------------------


class Credential(NamedTuple):
    access_key: str
    secret_key: str


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_uri(raw_path: str) -> str:
    """The path as sent, dot segments and empty segments removed, percent-encoded once more."""
    segments: list[str] = []
    for segment in raw_path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return quote(path, safe="/~")


def canonical_query(raw_query: str) -> str:
    if not raw_query:
        return ""
    pairs = sorted(tuple(pair.partition("=")[::2]) for pair in raw_query.split("&"))
    return "&".join(f"{key}={value}" for key, value in pairs)


def string_to_sign(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, list[str]],
    signed: list[str],
    body: bytes,
    stamp: str,
    scope: str,
) -> str:
    """SigV4's string to sign for a request as received; ``headers`` maps lower-case names to values."""
    lines = [f"{name}:{','.join(' '.join(v.split()) for v in headers.get(name, []))}" for name in signed]
    canonical = "\n".join(
        [
            method.upper(),
            canonical_uri(raw_path),
            canonical_query(raw_query),
            "\n".join(lines) + "\n",
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{digest}"


def signature(secret: str, date: str, region: str, service: str, to_sign: str) -> str:
    return hmac.new(signing_key(secret, date, region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def check_sigv4(
    request: web.BaseRequest, body: bytes, known: Callable[[str], str | None], now: datetime.datetime
) -> tuple[int, str, str] | None:
    """``None`` when the request is signed by a known key, else (status, AWS error name, message).
    ``known`` gives an access key's secret (``None``: not a key AWS knows)."""
    header = request.headers.get("Authorization", "")
    found = _AUTH.match(header)
    if found is None:
        if not header:
            return 403, "MissingAuthenticationTokenException", "Missing Authentication Token"
        return (
            403,
            "IncompleteSignatureException",
            f"Authorization header requires 'Credential', 'Signature' "
            f"and 'SignedHeaders' parameters. Authorization={header[:40]}",
        )
    secret = known(found["key"])
    if secret is None:
        return 403, "UnrecognizedClientException", INVALID_TOKEN
    stamp = request.headers.get("X-Amz-Date", "")
    try:
        sent = datetime.datetime.strptime(stamp, _STAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        return (
            403,
            "IncompleteSignatureException",
            f"Date must be in ISO-8601 'basic format'. Got '{stamp}'.",
        )
    if found["service"] != SERVICE:
        return (
            403,
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{SERVICE}'. ",
        )
    if found["date"] != stamp[:8]:
        return (
            403,
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        )
    skew = (sent - now).total_seconds()
    if skew < -SKEW_S:
        earliest = (now - datetime.timedelta(seconds=SKEW_S)).strftime(_STAMP)
        return (
            403,
            "InvalidSignatureException",
            (f"Signature expired: {stamp} is now earlier than {earliest} ({now.strftime(_STAMP)} - 5 min.)"),
        )
    if skew > SKEW_S:
        latest = (now + datetime.timedelta(seconds=SKEW_S)).strftime(_STAMP)
        return (
            403,
            "InvalidSignatureException",
            (
                f"Signature not yet current: {stamp} is still later than {latest} "
                f"({now.strftime(_STAMP)} + 5 min.)"
            ),
        )
    signed = found["signed"].split(";")
    if "host" not in signed:
        return (
            403,
            "InvalidSignatureException",
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        )
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    scope = f"{found['date']}/{found['region']}/{found['service']}/aws4_request"
    url = request.rel_url
    to_sign = string_to_sign(
        request.method, url.raw_path, url.raw_query_string, headers, signed, body, stamp, scope
    )
    expected = signature(secret, found["date"], found["region"], found["service"], to_sign)
    if not hmac.compare_digest(expected, found["signature"]):
        return 403, "InvalidSignatureException", MISMATCH
    return None
