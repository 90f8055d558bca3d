"""The operator token is made once with mode 0600, reused after, and compared exactly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gridmarket.auth.operator import (
    OperatorTokenError,
    load_or_create_operator_token,
    read_operator_token,
    token_matches,
)


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even with no umask to help, the file is never wider than 0600
    try:
        token = load_or_create_operator_token(tmp_path)
    finally:
        os.umask(old_umask)
    assert (tmp_path / "operator-token").stat().st_mode & 0o777 == 0o600
    assert len(token) >= 43
    assert load_or_create_operator_token(tmp_path) == token == read_operator_token(tmp_path)


def test_a_missing_or_unusable_file_is_an_error_on_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_operator_token(tmp_path)
    (tmp_path / "operator-token").write_text("\n")
    with pytest.raises(OperatorTokenError):
        load_or_create_operator_token(tmp_path)


def test_matching_is_exact_and_takes_any_text() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abd", "abc")
    assert not token_matches("ab", "abc")
    assert not token_matches("", "abc")
    assert not token_matches("\udcff\u00e9", "abc")  # non-ASCII header text does not raise
