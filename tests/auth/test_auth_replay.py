"""The replay guard admits each signed write once, forgets it after its window, and is bounded."""

from __future__ import annotations

import pytest

from gridmarket.auth.outcomes import AuthCode, AuthFailure, Fingerprint, Verified
from gridmarket.auth.replay import ReplayGuard, is_signed_write
from gridmarket.auth.signing import TIMESTAMP_WINDOW_S, Signer, verify_request

NOW_S = 1_800_000_000
FINGERPRINT = Fingerprint("f" * 43)


def write(n: int, timestamp_s: int = NOW_S) -> Verified:
    """A verified write whose signature is distinct for each `n`."""
    return Verified(FINGERPRINT, n.to_bytes(64, "big"), timestamp_s)


def code(result: Verified | AuthFailure) -> AuthCode | None:
    return result.code if isinstance(result, AuthFailure) else None


def test_first_use_is_admitted_and_repeat_is_replayed() -> None:
    guard = ReplayGuard()
    assert guard.admit(write(1), NOW_S) == write(1)
    result = guard.admit(write(1), NOW_S + 5)
    assert code(result) == AuthCode.replayed_request
    assert isinstance(result, AuthFailure) and "already used" in result.detail
    assert guard.admit(write(2), NOW_S + 5) == write(2)
    assert len(guard) == 2


def test_replay_of_a_real_signed_request_is_caught() -> None:
    signer = Signer(bytes(32))
    keys = {signer.fingerprint: signer.public_key_raw}
    headers = signer.sign_request("DELETE", "/v1/orders/7", b"", NOW_S)
    guard = ReplayGuard()
    outcomes = []
    for now_s in (NOW_S, NOW_S + 10):
        verified = verify_request(headers, "DELETE", "/v1/orders/7", b"", now_s, keys.get)
        assert isinstance(verified, Verified)
        outcomes.append(code(guard.admit(verified, now_s)))
    assert outcomes == [None, AuthCode.replayed_request]


def test_signature_is_remembered_until_its_timestamp_leaves_the_window() -> None:
    guard = ReplayGuard()
    assert guard.admit(write(1), NOW_S) == write(1)
    last_valid_s = NOW_S + TIMESTAMP_WINDOW_S
    assert code(guard.admit(write(1), last_valid_s)) == AuthCode.replayed_request
    guard.evict_expired(last_valid_s)
    assert len(guard) == 1
    guard.evict_expired(last_valid_s + 1)
    assert len(guard) == 0


def test_future_timestamp_is_remembered_for_its_whole_window() -> None:
    guard = ReplayGuard()
    ahead = write(1, NOW_S + TIMESTAMP_WINDOW_S)
    assert guard.admit(ahead, NOW_S) == ahead
    assert code(guard.admit(ahead, NOW_S + 2 * TIMESTAMP_WINDOW_S)) == AuthCode.replayed_request
    guard.evict_expired(NOW_S + 2 * TIMESTAMP_WINDOW_S + 1)
    assert len(guard) == 0


def test_eviction_follows_signed_timestamps_not_arrival_order() -> None:
    guard = ReplayGuard()
    guard.admit(write(1, NOW_S + 20), NOW_S)
    guard.admit(write(2, NOW_S - 20), NOW_S)
    guard.admit(write(3, NOW_S), NOW_S)
    guard.evict_expired(NOW_S + 11)  # write 2 (expires NOW_S + 10) leaves
    assert len(guard) == 2
    assert code(guard.admit(write(2, NOW_S - 20), NOW_S + 11)) == AuthCode.expired_timestamp
    guard.evict_expired(NOW_S + 31)  # write 3 leaves; write 1 stays until NOW_S + 50
    assert len(guard) == 1
    assert code(guard.admit(write(1, NOW_S + 20), NOW_S + 50)) == AuthCode.replayed_request


def test_timestamp_that_left_the_window_since_verification_is_expired() -> None:
    guard = ReplayGuard()
    result = guard.admit(write(1, NOW_S - TIMESTAMP_WINDOW_S - 1), NOW_S)
    assert code(result) == AuthCode.expired_timestamp
    assert len(guard) == 0
    boundary = write(2, NOW_S - TIMESTAMP_WINDOW_S)
    assert guard.admit(boundary, NOW_S) == boundary


def test_full_guard_refuses_rather_than_grows() -> None:
    guard = ReplayGuard(max_entries=3)
    for n in range(3):
        assert guard.admit(write(n), NOW_S) == write(n)
    result = guard.admit(write(3), NOW_S)
    assert code(result) == AuthCode.replay_guard_full
    assert len(guard) == 3
    # A replay is still reported as a replay when full.
    assert code(guard.admit(write(0), NOW_S)) == AuthCode.replayed_request


def test_full_guard_makes_room_by_evicting_expired_entries() -> None:
    guard = ReplayGuard(max_entries=2)
    guard.admit(write(1, NOW_S - 10), NOW_S)
    guard.admit(write(2, NOW_S), NOW_S)
    assert code(guard.admit(write(3, NOW_S + 5), NOW_S + 5)) == AuthCode.replay_guard_full
    # At NOW_S + 21, write 1 (signed at NOW_S - 10) is past its window and is evicted.
    assert guard.admit(write(3, NOW_S + 21), NOW_S + 21) == write(3, NOW_S + 21)
    assert len(guard) == 2


def test_steady_load_stays_within_the_window() -> None:
    guard = ReplayGuard(max_entries=100)
    for second in range(200):
        for n in range(3):
            accepted = guard.admit(write(second * 3 + n, NOW_S + second), NOW_S + second)
            assert isinstance(accepted, Verified)
        assert len(guard) <= 3 * (TIMESTAMP_WINDOW_S + 1)


@pytest.mark.parametrize(
    ("method", "guarded"),
    [
        ("POST", True),
        ("put", True),
        ("PATCH", True),
        ("DELETE", True),
        ("GET", False),
        ("HEAD", False),
        ("OPTIONS", False),
    ],
)
def test_signed_writes_are_the_guarded_methods(method: str, guarded: bool) -> None:
    assert is_signed_write(method) is guarded
