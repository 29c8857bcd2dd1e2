"""Upbit's request signing: a JWT (HS256) with the access key, a fresh nonce and, for requests with
parameters, the SHA-512 `query_hash` of the exact query string sent. Keys never leave this module
except inside the signed token."""
from __future__ import annotations

import hashlib
import uuid
from urllib.parse import unquote, urlencode

import jwt


def query_string(params: dict | None) -> str:
    """The query string as sent and as hashed (lists as `key[]=a&key[]=b`, Upbit's form)."""
    if not params:
        return ""
    pairs = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            pairs.extend((f"{key}[]", item) for item in value)
        else:
            pairs.append((key, value))
    return unquote(urlencode(pairs))


def authorization(access_key: str, secret_key: str, query: str = "") -> str:
    payload = {"access_key": access_key, "nonce": str(uuid.uuid4())}
    if query:
        payload["query_hash"] = hashlib.sha512(query.encode()).hexdigest()
        payload["query_hash_alg"] = "SHA512"
    return "Bearer " + jwt.encode(payload, secret_key, algorithm="HS256")
