"""Trading API authentication: The Grid's Ed25519 request signing, replay guard, consumption keys.

Pure where possible: the clock is passed in and key storage is a lookup callable, so the
API edge decides where keys live and what time it is. Randomness appears only where a new
secret is made (`signing.generate_keypair`, `keys.new_consumption_key`).

- `outcomes`: `Verified` and `AuthFailure` with its stable `AuthCode`s (each a 401 at the edge,
  except `replay_guard_full`, see `replay`).
- `signing`: the three `x-thegrid-*` headers and the WebSocket `authenticate` payload, both
  sides (sign for our client, verify for the server).
- `replay`: remembers the signatures of signed writes for the timestamp window.
- `keys`: consumption keys, made once, stored only as a SHA-256 hash.
"""
