"""Consumption keys are recognisable, unique, stored only hashed, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
from unittest import mock

from gridmarket.auth.keys import (
    ConsumptionKeyHash,
    consumption_key_matches,
    display_prefix,
    hash_consumption_key,
    looks_like_consumption_key,
    new_consumption_key,
)


def test_new_key_shape() -> None:
    plaintext, key_id, key_hash = new_consumption_key()
    assert re.fullmatch(r"gm-[A-Za-z0-9_-]{43}", plaintext)
    assert looks_like_consumption_key(plaintext)
    assert re.fullmatch(r"ck_[0-9a-f]{24}", key_id)
    assert re.fullmatch(r"[0-9a-f]{64}", key_hash)


def test_hash_is_sha256_of_the_key_text() -> None:
    plaintext, _, key_hash = new_consumption_key()
    assert key_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert hash_consumption_key(plaintext) == key_hash


def test_nothing_returned_for_storage_contains_the_secret() -> None:
    plaintext, key_id, key_hash = new_consumption_key()
    secret = plaintext.removeprefix("gm-")
    assert secret not in key_id and secret not in key_hash
    assert len(display_prefix(plaintext)) == 11 and plaintext.startswith(display_prefix(plaintext))


def test_keys_and_ids_are_unique() -> None:
    made = [new_consumption_key() for _ in range(200)]
    assert len({plaintext for plaintext, _, _ in made}) == 200
    assert len({key_id for _, key_id, _ in made}) == 200
    assert len({key_hash for _, _, key_hash in made}) == 200


def test_matches_only_the_right_key() -> None:
    plaintext, _, key_hash = new_consumption_key()
    other, _, _ = new_consumption_key()
    assert consumption_key_matches(plaintext, key_hash)
    assert not consumption_key_matches(other, key_hash)
    assert not consumption_key_matches(plaintext[:-1], key_hash)
    assert not consumption_key_matches("", key_hash)


def test_comparison_is_constant_time() -> None:
    plaintext, _, key_hash = new_consumption_key()
    target = "gridmarket.auth.keys.hmac.compare_digest"
    with mock.patch(target, wraps=hmac.compare_digest) as compare:
        assert consumption_key_matches(plaintext, key_hash)
    compare.assert_called_once()


def test_any_presented_text_is_hashed_without_raising() -> None:
    for presented in ("sk-or-v1-" + "0" * 32, "é" * 10, "\ud800", "Bearer x"):
        assert len(hash_consumption_key(presented)) == 64
        assert not looks_like_consumption_key(presented)
    assert not consumption_key_matches("x", ConsumptionKeyHash("é-not-a-hash"))


def test_shape_check_rejects_near_misses() -> None:
    plaintext, _, _ = new_consumption_key()
    assert not looks_like_consumption_key(plaintext + "A")
    assert not looks_like_consumption_key(plaintext[:-1])
    assert not looks_like_consumption_key("GM-" + plaintext[3:])
    assert not looks_like_consumption_key(plaintext[:10] + "+" + plaintext[11:])
