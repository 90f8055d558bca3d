"""Consumption keys: made once, shown once, stored only as a SHA-256 hash.

A key reads `gm-` followed by 43 URL-safe base64 characters (32 random bytes), so it is easy to
recognise in a config file or a leaked log and to tell apart from The Grid's `sk-or-v1-` keys
(grid-api-notes.md §2.1). `new_consumption_key` returns the plaintext for the one response that
shows it, a public key id for listing and revoking, and the hash to store. Nothing here keeps
the plaintext.

Why SHA-256 and not bcrypt, scrypt or Argon2: a slow, salted KDF exists to make guessing a
low-entropy secret (a password) expensive, one guess at a time. These keys are 256 bits drawn
from the OS CSPRNG, so there is nothing to guess: even a fast hash leaves 2^256 candidates, far
beyond any brute force, and a salt adds nothing because no two keys are alike. A fast unsalted
hash also lets the store find a key by its hash in one indexed lookup per request, where a
salted KDF would need the key id inside the token and a deliberately slow check on the hot
path of every inference call.

Expiry, revocation and spend caps belong to the stored record, not to this module.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import NewType

CONSUMPTION_KEY_PREFIX = "gm-"
_SECRET_BYTES = 32
_KEY_TEXT = re.compile(re.escape(CONSUMPTION_KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")
#: How much of a key is shown in listings (The Grid's `key_prefix`): the prefix and 8 more
#: characters, 48 of the 256 secret bits, leaving 208 unknown.
DISPLAY_PREFIX_CHARS = len(CONSUMPTION_KEY_PREFIX) + 8

ConsumptionKeyId = NewType("ConsumptionKeyId", str)
#: Lower-case hex SHA-256 of the key's UTF-8 text: 64 characters.
ConsumptionKeyHash = NewType("ConsumptionKeyHash", str)


def new_consumption_key() -> tuple[str, ConsumptionKeyId, ConsumptionKeyHash]:
    """A new key: `(plaintext, key_id, hash)`. Show the plaintext once, store only the rest.

    The key id is random too, not derived from the key, so it can be shown, logged and put in
    URLs without saying anything about the secret.
    """
    plaintext = CONSUMPTION_KEY_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
    key_id = ConsumptionKeyId("ck_" + secrets.token_hex(12))
    return plaintext, key_id, hash_consumption_key(plaintext)


def looks_like_consumption_key(text: str) -> bool:
    """Whether `text` has the shape of one of our keys; a cheap check before any lookup."""
    return _KEY_TEXT.fullmatch(text) is not None


def hash_consumption_key(plaintext: str) -> ConsumptionKeyHash:
    """The stored form of a key. Takes any text (a header value) without raising."""
    # surrogatepass: a lone surrogate cannot come from an HTTP header, but must not raise here.
    data = plaintext.encode("utf-8", "surrogatepass")
    return ConsumptionKeyHash(hashlib.sha256(data).hexdigest())


def consumption_key_matches(plaintext: str, stored_hash: ConsumptionKeyHash) -> bool:
    """Whether `plaintext` is the key stored as `stored_hash`, compared in constant time.

    Constant time over the hashes, so the time taken says nothing about how many leading
    characters of the stored hash a guess got right.
    """
    presented = hash_consumption_key(plaintext).encode("ascii")
    # As bytes: `compare_digest` raises TypeError on a non-ASCII str, and a stored value is data.
    return hmac.compare_digest(presented, stored_hash.encode("utf-8", "surrogatepass"))


def display_prefix(plaintext: str) -> str:
    """The start of a key, to show in listings so a user can tell their keys apart."""
    return plaintext[:DISPLAY_PREFIX_CHARS]
