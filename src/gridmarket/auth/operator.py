"""The operator token: the one secret that guards the admin API.

Made on the server's first start (`secrets.token_urlsafe(32)`: 256 random bits) and kept at
`<data dir>/operator-token`, readable by its owner only: the file is created with
`os.open(..., O_CREAT | O_EXCL, 0o600)`, so it never exists with wider permissions, not even
for an instant (a `chmod` afterwards would leave a window). Later starts reuse it; to rotate it,
stop the server, delete the file and start again. The admin CLI reads the same file, so it
must run as the same user with the same data dir.

The admin API compares a presented token with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

TOKEN_FILE_NAME = "operator-token"
TOKEN_FILE_MODE = 0o600
_TOKEN_BYTES = 32
#: Longer than any token we make; a longer file is not ours.
MAX_TOKEN_CHARS = 256


class OperatorTokenError(Exception):
    """The token file exists but cannot be used (empty, too long, unreadable)."""


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_FILE_NAME


def read_operator_token(data_dir: Path) -> str:
    """The token stored in `data_dir`; `FileNotFoundError` if there is none yet."""
    path = token_path(data_dir)
    text = path.read_text(encoding="ascii").strip()
    if not text or len(text) > MAX_TOKEN_CHARS:
        raise OperatorTokenError(f"{path} does not hold a token: delete it and restart the server")
    return text


def load_or_create_operator_token(data_dir: Path) -> str:
    """The token in `data_dir`, made (mode 0600) if this is the first start."""
    path = token_path(data_dir)
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, TOKEN_FILE_MODE)
    except FileExistsError:
        return read_operator_token(data_dir)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(token + "\n")
        file.flush()
        os.fsync(file.fileno())
    return token


def token_matches(presented: str, expected: str) -> bool:
    """Whether `presented` is the operator token, compared in constant time."""
    # As bytes: compare_digest raises TypeError on non-ASCII str, and a header is client data.
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )
