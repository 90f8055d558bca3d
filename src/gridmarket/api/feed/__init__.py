"""The live feed: a WebSocket with The Grid's Phoenix channel, streams and events, plus a book.

    ws://HOST/v1/trading_socket/websocket?vsn=1.0.0     (also /trading_socket/websocket, /v1/)

Protocol (grid-client-contract.md §5.1, grid-api-notes.md §8): Phoenix channels JSON frames,
v1 objects `{topic, event, payload, ref}` as The Grid's client sends them, or v2 arrays
`[join_ref, ref, topic, event, payload]` (`frames`); topic `ws:trading`; `phx_join`, then
optionally `authenticate {timestamp, fingerprint, signature}` (Ed25519 over
`timestamp + fingerprint`, the same keys, 30 s window and refusal codes as signed requests),
then `subscribe {streams: [{name, market?}], request_id}`, answered by an `ack` event
`{request_id, status: ok|partial|error, action, streams, rejected}`. Heartbeats on topic
`phoenix` are answered with `phx_reply`. Details and errors: `socket`.

Streams and the events they push (public unless said otherwise):

- `market.trades` (with `market`): `new_trade` `{data: {trade_id, market_id, price, ...}}`
- `market.ticker` (with `market`): `market_ticker` `{market_id, last_price, bid, ask,
  volume_24h}`, at once on subscribing and whenever one of them changes
- `market.book` (with `market`): `book_snapshot`, then `book_update` (ours, below)
- `user.orders` (after `authenticate`): `new_order` / `order_update` `{data: {order_id, ...}}`
  for the authenticated account's own orders, never another's

Full-depth book (`market.book`; The Grid has none). On subscribing, `book_snapshot`
`{market_id, sequence, seq, bids: [{price, quantity}], asks: [...]}` (every level, best first),
then `book_update` `{market_id, seq, first_sequence, last_sequence, changes: [{sequence,
side: "bid"|"ask", price, quantity}]}`, one per committed command that moved the book. Each
change sets a level's total open quantity (`"0"`: the level is gone) and carries the next
`sequence` of that market: the first change after a snapshot has `snapshot.sequence + 1`.
Keeping a local book: apply the snapshot, then every change in order. **Gap**: a change whose
sequence is not the last one + 1 means something was missed: discard the local book and send
`subscribe` for `market.book` again (no need to unsubscribe); ignore `book_update`s until the
fresh `book_snapshot` that follows the ack, then go on from it. Changes with a sequence at or
below a snapshot's are already in it (skip them). `seq` (snapshot and update) is the
market-wide command sequence number of the last command applied, the numbering of REST
`GET /v1/markets/{id}/orderbook`'s `sequence`; the feed's own `sequence` numbers book changes
per market and is what gap detection uses. The book is built from committed outcomes only
(`service.book_feed`), so it may trail the REST book (read from the live state) by the batch
being committed.

Limits (`hub.FeedLimits`): 10 streams per connection, 1,000 connections per process, 1,000
unread messages per connection (then it is closed with reason `slow_consumer`: it never
holds back the market), 16 KiB per client frame, 90 s without any frame (heartbeats count).
When a connection is closed by the server it first gets a `phx_error` push `{reason, detail}`
(`slow_consumer`, `idle_timeout`, `resync`, `shutdown`) and the WebSocket close reason says
the same.
"""

from gridmarket.api.feed.socket import router

__all__ = ["router"]
