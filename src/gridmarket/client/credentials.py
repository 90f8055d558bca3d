"""The signing key a client signs with, from a key file, a base64 private key, or the environment.

Where a client's key comes from, first match wins (`resolve_credentials`):

1. `Credentials` passed in;
2. a key file path passed in: the JSON that `gridmarket admin create-account ... --json`
   prints, `{"account_id", "consumption_key", "signing_key": {"private_key", "public_key",
   "fingerprint"}}` (a bare `{"private_key": ...}` works too);
3. a private key passed in: base64 of the 32-byte Ed25519 seed or the 64-byte secret key, as
   The Grid hands them out (standard or URL-safe, padded or not), or the raw 32 seed bytes;
4. `GRIDMARKET_SIGNING_KEY` (a base64 private key), then `GRIDMARKET_KEY_FILE` (a key file).

No key at all is fine for the public endpoints; a signed call without one raises
`CredentialsError`. A key file whose `fingerprint` does not match its private key is refused
rather than producing signatures the server will reject with a puzzling `unknown_fingerprint`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from gridmarket.auth.signing import PRIVATE_SEED_BYTES, Signer, decode_private_key
from gridmarket.client.errors import CredentialsError

SIGNING_KEY_ENV = "GRIDMARKET_SIGNING_KEY"
KEY_FILE_ENV = "GRIDMARKET_KEY_FILE"
#: A key file is a few hundred bytes; refuse to read anything large by mistake.
MAX_KEY_FILE_BYTES = 65_536


class Credentials:
    """A loaded signing key (the `Signer`) and, when known, the account it belongs to."""

    __slots__ = ("account_id", "signer")

    def __init__(self, signer: Signer, account_id: str | None = None) -> None:
        self.signer = signer
        self.account_id = account_id

    def __repr__(self) -> str:  # never the key itself
        return f"Credentials(fingerprint={self.fingerprint!r}, account_id={self.account_id!r})"

    @property
    def fingerprint(self) -> str:
        return self.signer.fingerprint

    @classmethod
    def from_private_key(cls, key: str | bytes, account_id: str | None = None) -> Credentials:
        """From a base64 private key (text), or the raw 32-byte seed (bytes)."""
        if isinstance(key, bytes):
            if len(key) != PRIVATE_SEED_BYTES:
                raise CredentialsError("a raw private key is the 32-byte Ed25519 seed")
            return cls(Signer(key), account_id)
        try:
            seed = decode_private_key(key)
        except ValueError as exc:
            raise CredentialsError(f"not a base64 Ed25519 private key: {exc}") from None
        return cls(Signer(seed), account_id)

    @classmethod
    def from_key_file(cls, path: str | Path) -> Credentials:
        """From the JSON key file `gridmarket admin create-account --json` prints."""
        where = Path(path).expanduser()
        try:
            with where.open("rb") as handle:
                raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise CredentialsError(f"cannot read key file {where}: {exc.strerror}") from None
        if len(raw) > MAX_KEY_FILE_BYTES:
            raise CredentialsError(f"key file {where} is larger than {MAX_KEY_FILE_BYTES} bytes")
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise CredentialsError(f"key file {where} is not JSON") from None
        return cls.from_key_document(document, str(where))

    @classmethod
    def from_key_document(cls, document: object, where: str = "key file") -> Credentials:
        if not isinstance(document, Mapping):
            raise CredentialsError(f"{where}: expected a JSON object")
        nested = document.get("signing_key")
        key_block = nested if isinstance(nested, Mapping) else document
        private_key = key_block.get("private_key")
        if not isinstance(private_key, str):
            raise CredentialsError(f"{where}: no signing_key.private_key")
        account_id = document.get("account_id")
        credentials = cls.from_private_key(
            private_key, account_id if isinstance(account_id, str) else None
        )
        stated = key_block.get("fingerprint")
        if isinstance(stated, str) and stated != credentials.fingerprint:
            raise CredentialsError(
                f"{where}: the fingerprint {stated!r} is not that of its private key"
            )
        return credentials

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Credentials | None:
        """From `GRIDMARKET_SIGNING_KEY`, else `GRIDMARKET_KEY_FILE`; None if neither is set."""
        env = os.environ if environ is None else environ
        private_key = env.get(SIGNING_KEY_ENV)
        if private_key:
            return cls.from_private_key(private_key)
        key_file = env.get(KEY_FILE_ENV)
        if key_file:
            return cls.from_key_file(key_file)
        return None


def resolve_credentials(
    credentials: Credentials | None = None,
    *,
    key_file: str | Path | None = None,
    signing_key: str | bytes | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The first key given, in the order of the module docstring; None when there is none."""
    if credentials is not None:
        return credentials
    if key_file is not None:
        return Credentials.from_key_file(key_file)
    if signing_key is not None:
        return Credentials.from_private_key(signing_key)
    return Credentials.from_env(environ)
