"""`verify_request` accepts exactly The Grid's signed requests and names every refusal."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from gridmarket.auth.outcomes import AuthCode, AuthFailure, Fingerprint, Verified
from gridmarket.auth.signing import (
    FINGERPRINT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TIMESTAMP_WINDOW_S,
    Signer,
    decode_private_key,
    fingerprint,
    generate_keypair,
    sign_request,
    sign_ws_authenticate,
    verify_request,
    verify_ws_authenticate,
)

SEED = bytes(range(32))
OTHER_SEED = bytes(range(32, 64))
NOW_S = 1_800_000_000
BODY = b'{"market_id":"m1","side":"buy","type":"limit","quantity":"1","price":"0.50"}'
SIGNER = Signer(SEED)
KEYS = {SIGNER.fingerprint: SIGNER.public_key_raw}


def lookup(key_fingerprint: Fingerprint) -> bytes | None:
    return KEYS.get(key_fingerprint)


def signed(
    method: str = "POST", path: str = "/v1/orders", body: bytes = BODY, ts: int = NOW_S
) -> dict[str, str]:
    return sign_request(SEED, method, path, body, ts)


def verify(
    headers: dict[str, str],
    method: str = "POST",
    path: str = "/v1/orders",
    body: bytes = BODY,
    now_s: int = NOW_S,
) -> Verified | AuthFailure:
    return verify_request(headers, method, path, body, now_s, lookup)


def code(result: Verified | AuthFailure) -> AuthCode | None:
    return result.code if isinstance(result, AuthFailure) else None


def test_good_signature_is_verified() -> None:
    headers = signed()
    result = verify(headers)
    assert result == Verified(
        SIGNER.fingerprint, base64.b64decode(headers[SIGNATURE_HEADER]), NOW_S
    )


def test_get_without_body_is_verified() -> None:
    assert isinstance(verify(signed("GET", body=b""), "GET", body=b""), Verified)


def test_signature_by_another_key_is_invalid() -> None:
    headers = signed()
    headers[SIGNATURE_HEADER] = sign_request(OTHER_SEED, "POST", "/v1/orders", BODY, NOW_S)[
        SIGNATURE_HEADER
    ]
    result = verify(headers)
    assert code(result) == AuthCode.invalid_signature
    assert isinstance(result, AuthFailure) and "query string" in result.detail


def test_flipped_signature_bit_is_invalid() -> None:
    headers = signed()
    raw = bytearray(base64.b64decode(headers[SIGNATURE_HEADER]))
    raw[10] ^= 1
    headers[SIGNATURE_HEADER] = base64.b64encode(raw).decode()
    assert code(verify(headers)) == AuthCode.invalid_signature


def test_body_tampering_is_invalid() -> None:
    tampered = BODY.replace(b'"0.50"', b'"0.05"')
    assert code(verify(signed(), body=tampered)) == AuthCode.invalid_signature


def test_whitespace_change_in_body_is_invalid() -> None:
    assert code(verify(signed(), body=BODY + b" ")) == AuthCode.invalid_signature


def test_other_path_or_method_is_invalid() -> None:
    assert code(verify(signed(), path="/v1/orders/1")) == AuthCode.invalid_signature
    assert code(verify(signed(), method="PUT")) == AuthCode.invalid_signature


def test_path_with_query_string_signs_the_path_only() -> None:
    with_query = signed("GET", "/v1/orders?status=filled&limit=5", b"")
    without = signed("GET", "/v1/orders", b"")
    assert with_query == without
    for path in ("/v1/orders", "/v1/orders?status=active", "/v1/orders?"):
        assert isinstance(verify(with_query, "GET", path, b""), Verified)


def test_percent_encoding_in_the_path_is_signed_as_sent() -> None:
    headers = signed("GET", "/v1/instruments/by-symbol/text%2Dprime", b"")
    raw_path = "/v1/instruments/by-symbol/text%2Dprime"
    decoded_path = "/v1/instruments/by-symbol/text-prime"
    assert isinstance(verify(headers, "GET", raw_path, b""), Verified)
    assert code(verify(headers, "GET", decoded_path, b"")) == AuthCode.invalid_signature


def test_method_is_upper_cased_on_both_sides() -> None:
    assert signed("post") == signed("POST")
    assert isinstance(verify(signed("POST"), method="post"), Verified)
    assert isinstance(verify(signed("delete", body=b""), method="DELETE", body=b""), Verified)


@pytest.mark.parametrize("offset_s", [-TIMESTAMP_WINDOW_S, 0, TIMESTAMP_WINDOW_S])
def test_timestamp_within_30_s_either_way_is_accepted(offset_s: int) -> None:
    result = verify(signed(ts=NOW_S + offset_s))
    assert isinstance(result, Verified) and result.timestamp_s == NOW_S + offset_s


def test_timestamp_just_past_30_s_behind_is_expired() -> None:
    result = verify(signed(ts=NOW_S - TIMESTAMP_WINDOW_S - 1))
    assert code(result) == AuthCode.expired_timestamp
    assert isinstance(result, AuthFailure) and "31 s behind" in result.detail


def test_timestamp_just_past_30_s_ahead_is_future() -> None:
    result = verify(signed(ts=NOW_S + TIMESTAMP_WINDOW_S + 1))
    assert code(result) == AuthCode.future_timestamp
    assert isinstance(result, AuthFailure) and "31 s ahead" in result.detail


def test_window_is_checked_before_the_signature() -> None:
    headers = signed(ts=NOW_S - 3600)
    headers[SIGNATURE_HEADER] = "A" * 86 + "=="
    assert code(verify(headers)) == AuthCode.expired_timestamp


def test_changing_the_timestamp_header_breaks_the_signature() -> None:
    headers = signed()
    headers[TIMESTAMP_HEADER] = str(NOW_S + 1)
    assert code(verify(headers)) == AuthCode.invalid_signature


def test_unknown_fingerprint() -> None:
    headers = sign_request(OTHER_SEED, "POST", "/v1/orders", BODY, NOW_S)
    result = verify(headers)
    assert code(result) == AuthCode.unknown_fingerprint


def test_revoked_key_is_unknown() -> None:
    result = verify_request(signed(), "POST", "/v1/orders", BODY, NOW_S, lambda _: None)
    assert code(result) == AuthCode.unknown_fingerprint


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (SIGNATURE_HEADER, AuthCode.missing_signature),
        (TIMESTAMP_HEADER, AuthCode.missing_timestamp),
        (FINGERPRINT_HEADER, AuthCode.missing_fingerprint),
    ],
)
def test_each_missing_header_has_its_own_code(header: str, expected: AuthCode) -> None:
    absent = signed()
    del absent[header]
    assert code(verify(absent)) == expected
    empty = signed()
    empty[header] = ""
    assert code(verify(empty)) == expected


def test_missing_headers_are_reported_in_a_fixed_order() -> None:
    assert code(verify({})) == AuthCode.missing_signature
    only_signature = {SIGNATURE_HEADER: signed()[SIGNATURE_HEADER]}
    assert code(verify(only_signature)) == AuthCode.missing_timestamp


def test_header_names_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in signed().items()}
    assert isinstance(verify(headers), Verified)


def test_repeated_header_is_malformed() -> None:
    class RepeatedHeaders(dict[str, str]):
        """Lists one header twice, as Starlette's `Headers.items()` does."""

        def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
            return [*super().items(), (TIMESTAMP_HEADER, str(NOW_S))]

    result = verify(RepeatedHeaders(signed()))
    assert code(result) == AuthCode.malformed_timestamp
    assert isinstance(result, AuthFailure) and "2 times" in result.detail


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "1800000000.0",
        "-1800000000",
        "+1800000000",
        " 1800000000",
        "1_800_000_000",
        "01800000000",
        "١٨٠٠٠٠٠٠٠٠",  # Arabic-Indic digits: `int()` would take them
        "9" * 16,
        "9" * 5000,  # longer than `int()` parses by default
    ],
)
def test_malformed_timestamp(timestamp: str) -> None:
    headers = signed()
    headers[TIMESTAMP_HEADER] = timestamp
    assert code(verify(headers)) == AuthCode.malformed_timestamp


def test_millisecond_timestamp_is_far_in_the_future() -> None:
    headers = signed()
    headers[TIMESTAMP_HEADER] = str(NOW_S * 1000)
    assert code(verify(headers)) == AuthCode.future_timestamp


@pytest.mark.parametrize(
    "mangle",
    [
        lambda s: s.rstrip("="),  # unpadded
        lambda s: s.replace("+", "-").replace("/", "_") + "!",  # not base64 at all
        lambda s: s[:-4] + "====",  # bad padding
        lambda s: base64.b64encode(base64.b64decode(s)[:63]).decode(),  # 63 bytes
        lambda s: s[:40] + "é" + s[41:],  # non-ASCII
        lambda s: "x",
    ],
)
def test_malformed_signature(mangle: Callable[[str], str]) -> None:
    headers = signed()
    headers[SIGNATURE_HEADER] = mangle(headers[SIGNATURE_HEADER])
    assert code(verify(headers)) == AuthCode.malformed_signature


def test_url_safe_signature_is_malformed() -> None:
    # Find a signature whose base64 has a `+` or `/`, then send it URL-safe.
    for ts in range(NOW_S, NOW_S + 30):
        headers = signed(ts=ts)
        standard = headers[SIGNATURE_HEADER]
        if "+" in standard or "/" in standard:
            break
    headers[SIGNATURE_HEADER] = standard.replace("+", "-").replace("/", "_")
    assert code(verify(headers, now_s=ts)) == AuthCode.malformed_signature


def test_fingerprint_variants_are_malformed() -> None:
    canonical = SIGNER.fingerprint
    variants = [
        canonical + "=",  # padded
        canonical[:-1],  # short
        canonical.replace("+", "-").replace("/", "_") if "+" in canonical else "-" + canonical[1:],
        "é" + canonical[1:],
    ]
    for variant in variants:
        headers = signed()
        headers[FINGERPRINT_HEADER] = variant
        result = verify(headers)
        assert code(result) == AuthCode.malformed_fingerprint, variant
        assert isinstance(result, AuthFailure) and "43-character" in result.detail


def test_non_canonical_fingerprint_spelling_is_malformed() -> None:
    # The last of 43 characters carries 2 unused bits; setting one keeps the same digest.
    canonical = SIGNER.fingerprint
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sloppy = canonical[:-1] + alphabet[alphabet.index(canonical[-1]) | 1]
    if sloppy == canonical:
        sloppy = canonical[:-1] + alphabet[alphabet.index(canonical[-1]) | 2]
    assert base64.b64decode(sloppy + "=") == base64.b64decode(canonical + "=")
    headers = signed()
    headers[FINGERPRINT_HEADER] = sloppy
    assert code(verify(headers)) == AuthCode.malformed_fingerprint


def test_fingerprint_format() -> None:
    private_seed, public_raw = generate_keypair()
    value = fingerprint(public_raw)
    assert len(value) == 43 and "=" not in value
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
    assert Signer(private_seed).fingerprint == value


def test_generated_keypairs_sign_and_verify() -> None:
    private_seed, public_raw = generate_keypair()
    assert len(private_seed) == 32 and len(public_raw) == 32
    assert generate_keypair()[0] != private_seed
    headers = sign_request(private_seed, "GET", "/v1/me", b"", NOW_S)
    keys = {fingerprint(public_raw): public_raw}
    result = verify_request(headers, "GET", "/v1/me", b"", NOW_S, keys.get)
    assert isinstance(result, Verified)


def test_key_store_returning_the_wrong_key_is_a_bug() -> None:
    other = Signer(OTHER_SEED).public_key_raw
    with pytest.raises(AssertionError):
        verify_request(signed(), "POST", "/v1/orders", BODY, NOW_S, lambda _: other)


def test_decode_private_key_takes_seed_or_secret_key_in_any_base64() -> None:
    secret_key = SEED + SIGNER.public_key_raw
    for raw in (SEED, secret_key):
        standard = base64.b64encode(raw).decode()
        url_safe = base64.urlsafe_b64encode(raw).decode()
        for text in (standard, standard.rstrip("="), url_safe, url_safe.rstrip("=")):
            assert decode_private_key(text) == SEED
    with pytest.raises(ValueError):
        decode_private_key(base64.b64encode(bytes(16)).decode())
    with pytest.raises(ValueError):
        decode_private_key("not base64!")


def test_ws_authenticate_round_trip() -> None:
    payload = sign_ws_authenticate(SEED, NOW_S)
    result = verify_ws_authenticate(payload, NOW_S + TIMESTAMP_WINDOW_S, lookup)
    assert isinstance(result, Verified) and result.fingerprint == SIGNER.fingerprint


def test_ws_authenticate_refusals() -> None:
    good = sign_ws_authenticate(SEED, NOW_S)
    stale = verify_ws_authenticate(good, NOW_S + TIMESTAMP_WINDOW_S + 1, lookup)
    assert code(stale) == AuthCode.expired_timestamp
    numeric = {**good, "timestamp": NOW_S}
    assert code(verify_ws_authenticate(numeric, NOW_S, lookup)) == AuthCode.malformed_timestamp
    for field, missing in (
        ("signature", AuthCode.missing_signature),
        ("timestamp", AuthCode.missing_timestamp),
        ("fingerprint", AuthCode.missing_fingerprint),
    ):
        without = {k: v for k, v in good.items() if k != field}
        assert code(verify_ws_authenticate(without, NOW_S, lookup)) == missing
    other = sign_ws_authenticate(OTHER_SEED, NOW_S)
    assert code(verify_ws_authenticate(other, NOW_S, lookup)) == AuthCode.unknown_fingerprint
    forged = {**good, "signature": other["signature"]}
    assert code(verify_ws_authenticate(forged, NOW_S, lookup)) == AuthCode.invalid_signature


def test_request_signature_does_not_authenticate_a_websocket() -> None:
    headers = signed("GET", "/v1/me", b"")
    payload = {
        "timestamp": headers[TIMESTAMP_HEADER],
        "fingerprint": headers[FINGERPRINT_HEADER],
        "signature": headers[SIGNATURE_HEADER],
    }
    assert code(verify_ws_authenticate(payload, NOW_S, lookup)) == AuthCode.invalid_signature
