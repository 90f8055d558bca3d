"""Our signatures and fingerprints equal fixed answers derived independently of our code.

The key is RFC 8032 §7.1 test 1. The expected values were checked three ways: by the RFC 8032
§6 reference algorithm written out below in pure Python (no OpenSSL), by `cryptography` called
directly, and, when they were written, by the `openssl` command line
(`openssl pkeyutl -sign -rawin`, and `openssl dgst -sha256 -binary | base64` for the
fingerprint). The messages are the reference's own examples (grid-api-notes.md §2.2).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gridmarket.auth.signing import (
    fingerprint,
    request_message,
    sign_request,
    sign_ws_authenticate,
    ws_authenticate_message,
)

# RFC 8032 §7.1, TEST 1.
RFC_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
RFC_EMPTY_MESSAGE_SIGNATURE = bytes.fromhex(
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
)

# Contains both `+` and `/`: a URL-safe encoder would give `-` and `_` instead.
RFC_FINGERPRINT = "If4x36FUomFia/hUBG/SJxt77UtqvkWqWId+9H+XIbk"
TIMESTAMP_S = 1706500000
ORDER_BODY = b'{"market_id":"market_abc","type":"limit","side":"buy","price":"0.68","quantity":1}'
GET_ORDERS_SIGNATURE = (
    "XOMJi6mIYnByYHgMIYtnpGSRVZk14hWnly10U848mZrlI9l0FeELZXjuit6A1mJefZUKnd2cAcW43UeVdA1BDQ=="
)
POST_ORDER_SIGNATURE = (
    "pi0TQPh6fivnGQH62bGQvTmGheH427cUFLkQPoFuE1Mu2x3qbRv51ss6ADGVXwO3fXb61e6O06489o3ZbJZXAA=="
)
WS_AUTHENTICATE_SIGNATURE = (
    "CDAxhO/D4qQIvy8kFzjSidSLgFpLpJt9EptwG3KsUI9Cf+O13EUNA6gBnoR0Q7arZrR+3WJGMXbfBasQ8ojbCw=="
)


# --- RFC 8032 §6 reference Ed25519 signing, transcribed: slow, but shares nothing with OpenSSL.
_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_GY = 4 * pow(5, _P - 2, _P) % _P
_GX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_G = (_GX, _GY, 1, _GX * _GY % _P)
Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    x = (a[1] - a[0]) * (b[1] - b[0]) % _P
    y = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    d = 2 * a[2] * b[2] % _P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f, g * h, f * g, e * h)


def _mul(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _compress(point: Point) -> bytes:
    z_inv = pow(point[2], _P - 2, _P)
    x, y = point[0] * z_inv % _P, point[1] * z_inv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _hash_mod_q(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % _Q


def reference_public_key(seed: bytes) -> bytes:
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    return _compress(_mul(a, _G))


def reference_sign(seed: bytes, message: bytes) -> bytes:
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    public = _compress(_mul(a, _G))
    r = _hash_mod_q(h[32:] + message)
    r_point = _compress(_mul(r, _G))
    s = (r + _hash_mod_q(r_point + public + message) * a) % _Q
    return r_point + s.to_bytes(32, "little")


# --- The tests.


def test_reference_algorithm_reproduces_rfc_8032_test_1() -> None:
    assert reference_public_key(RFC_SEED) == RFC_PUBLIC
    assert reference_sign(RFC_SEED, b"") == RFC_EMPTY_MESSAGE_SIGNATURE


def test_cryptography_reproduces_rfc_8032_test_1() -> None:
    key = Ed25519PrivateKey.from_private_bytes(RFC_SEED)
    assert key.sign(b"") == RFC_EMPTY_MESSAGE_SIGNATURE
    Ed25519PublicKey.from_public_bytes(RFC_PUBLIC).verify(RFC_EMPTY_MESSAGE_SIGNATURE, b"")


def test_fingerprint_of_rfc_key_by_hand() -> None:
    by_hand = base64.b64encode(hashlib.sha256(RFC_PUBLIC).digest()).decode().rstrip("=")
    assert by_hand == RFC_FINGERPRINT
    assert fingerprint(RFC_PUBLIC) == RFC_FINGERPRINT
    assert len(RFC_FINGERPRINT) == 43 and "=" not in RFC_FINGERPRINT
    assert "-" not in RFC_FINGERPRINT and "_" not in RFC_FINGERPRINT


def test_messages_match_the_reference_examples() -> None:
    assert request_message("1706500000", "GET", "/v1/orders", b"") == b"1706500000GET/v1/orders"
    assert (
        request_message("1706500000", "POST", "/v1/orders", ORDER_BODY)
        == b"1706500000POST/v1/orders" + ORDER_BODY
    )
    assert ws_authenticate_message("1706500000", RFC_FINGERPRINT) == (
        b"1706500000If4x36FUomFia/hUBG/SJxt77UtqvkWqWId+9H+XIbk"
    )


def test_get_with_query_known_answer() -> None:
    headers = sign_request(RFC_SEED, "GET", "/v1/orders?status=filled", b"", TIMESTAMP_S)
    assert headers == {
        "x-thegrid-signature": GET_ORDERS_SIGNATURE,
        "x-thegrid-timestamp": "1706500000",
        "x-thegrid-fingerprint": RFC_FINGERPRINT,
    }
    expected = reference_sign(RFC_SEED, b"1706500000GET/v1/orders")
    assert base64.b64decode(GET_ORDERS_SIGNATURE) == expected


def test_post_with_body_known_answer() -> None:
    headers = sign_request(RFC_SEED, "POST", "/v1/orders", ORDER_BODY, TIMESTAMP_S)
    assert headers["x-thegrid-signature"] == POST_ORDER_SIGNATURE
    message = b"1706500000POST/v1/orders" + ORDER_BODY
    assert base64.b64decode(POST_ORDER_SIGNATURE) == reference_sign(RFC_SEED, message)
    Ed25519PublicKey.from_public_bytes(RFC_PUBLIC).verify(
        base64.b64decode(headers["x-thegrid-signature"]), message
    )


def test_ws_authenticate_known_answer() -> None:
    payload = sign_ws_authenticate(RFC_SEED, TIMESTAMP_S)
    assert payload == {
        "timestamp": "1706500000",
        "fingerprint": RFC_FINGERPRINT,
        "signature": WS_AUTHENTICATE_SIGNATURE,
    }
    message = ("1706500000" + RFC_FINGERPRINT).encode()
    assert base64.b64decode(WS_AUTHENTICATE_SIGNATURE) == reference_sign(RFC_SEED, message)


def test_signature_header_is_standard_padded_base64() -> None:
    signature = sign_request(RFC_SEED, "POST", "/v1/orders", ORDER_BODY, TIMESTAMP_S)[
        "x-thegrid-signature"
    ]
    assert len(signature) == 88 and signature.endswith("==")
    assert base64.b64encode(base64.b64decode(signature, validate=True)).decode() == signature
