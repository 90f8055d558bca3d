"""The OpenAI surface end to end: the official `openai` SDK against a real `gridmarket serve`,
whose supplier endpoints are two deterministic fake upstreams (tests/support/fake_upstream.py).

Supplier A's endpoint is upstream "a", supplier B's is upstream "b". Consumers buy units on
the book and move them to consumption; every call is then paid from those lots, and the
tests read the lots back through the Trading API to check what was billed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from gateway_harness import (
    Party,
    ServerWithArgs,
    audit_balanced,
    buy_to_consumption,
    lots,
    offer,
    open_party,
    rebind,
    spent,
)
from live_server import clean_env, free_port
from prometheus_client.parser import text_string_to_metric_families
from vendor_specs import validate_openai, validate_openai_chunk, validate_openai_error

from gridmarket.client import UsageReceipt
from gridmarket.gateway.tokens import TokenCounter
from support.fake_upstream import FakeUpstream

PRIME = "text-prime"
MAX = "text-max"


class World:
    def __init__(self, server: ServerWithArgs, a: FakeUpstream, b: FakeUpstream) -> None:
        self.server = server
        self.a = a
        self.b = b
        self.supplier_a: Party
        self.supplier_b: Party

    def client(self, key: str) -> openai.OpenAI:
        return openai.OpenAI(api_key=key, base_url=f"{self.server.url}/v1", max_retries=0)

    def consumer(self, units: int = 1, instrument: str = PRIME) -> Party:
        party = open_party(self.server, deposit="100")
        if units:
            buy_to_consumption(party, instrument, units)
        return party

    def settled(self, party: Party, instrument: str = PRIME) -> list[int]:
        """The tokens billed per lot, once nothing is committed any more."""
        deadline = time.monotonic() + 10
        while True:
            rows = lots(party, instrument)
            if all(r["committed_tokens"] == "0" for r in rows) or time.monotonic() > deadline:
                return spent(party, instrument)
            time.sleep(0.05)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("gateway") / "home"
    with FakeUpstream("a") as a, FakeUpstream("b") as b:
        first = ServerWithArgs(home, [])
        supplier_a = open_party(first, supplier=True)
        supplier_b = open_party(first, supplier=True)
        first.stop()
        suppliers = [
            f"{PRIME}={a.base_url};model=fake-a;account={supplier_a.account_id};name=a",
            f"{PRIME}={b.base_url};model=fake-b;account={supplier_b.account_id};name=b",
        ]
        args = [arg for entry in suppliers for arg in ("--supplier", entry)]
        server = ServerWithArgs(home, args)
        try:
            running = World(server, a, b)
            running.supplier_a = rebind(supplier_a, server)
            running.supplier_b = rebind(supplier_b, server)
            offer(server, running.supplier_a, PRIME, 40, "1.000")
            offer(server, running.supplier_a, MAX, 2, "1.000")
            yield running
        finally:
            server.kill()


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


# -- answers, usage and billing ------------------------------------------------------------------


def test_a_non_streaming_answer_is_billed_its_reported_usage(world: World) -> None:
    buyer = world.consumer()
    answer = world.client(buyer.consumption_key).chat.completions.create(
        model="Text-Prime", messages=ask("hello there market")
    )
    assert answer.choices[0].message.content == "echo: hello there market"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == PRIME
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (3, 4)
    assert answer.usage.total_tokens == 7
    assert world.a.requests[-1]["model"] == "fake-a"
    assert world.settled(buyer) == [7]


def test_a_streamed_answer_carries_usage_only_when_asked(world: World) -> None:
    buyer = world.consumer()
    client = world.client(buyer.consumption_key)
    chunks = list(
        client.chat.completions.create(
            model=PRIME,
            messages=ask("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert world.a.requests[-1]["stream_options"] == {"include_usage": True}
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert {c.model for c in chunks} == {PRIME}
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 3 + 4
    assert all(c.usage is None for c in chunks[:-1])

    plain = list(client.chat.completions.create(model=PRIME, messages=ask("a b"), stream=True))
    assert world.a.requests[-1]["stream_options"] == {"include_usage": True}  # always asked
    assert all(c.choices and c.usage is None for c in plain)  # the usage chunk was stripped
    assert plain[-1].choices[0].finish_reason == "stop"
    assert world.settled(buyer) == [7 + 2 + 3]


def test_tools_are_passed_and_tool_calls_come_back(world: World) -> None:
    buyer = world.consumer()
    client = world.client(buyer.consumption_key)
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "look a word up",
                "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}},
            },
        }
    ]
    answer = client.chat.completions.create(model=PRIME, messages=ask("find x"), tools=tools)
    calls = answer.choices[0].message.tool_calls
    assert answer.choices[0].finish_reason == "tool_calls"
    assert calls is not None and calls[0].function.name == "lookup"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"echo": "find x"}  # type: ignore[union-attr]
    assert world.a.requests[-1]["tools"] == tools

    streamed = list(
        client.chat.completions.create(
            model=PRIME, messages=ask("find y"), tools=tools, stream=True
        )
    )
    arguments = "".join(
        (c.choices[0].delta.tool_calls or [])[0].function.arguments or ""  # type: ignore[union-attr]
        for c in streamed
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(arguments) == {"echo": "find y"}
    assert streamed[-1].choices[0].finish_reason == "tool_calls"

    followup = client.chat.completions.create(
        model=PRIME,
        tools=tools,
        messages=[
            *ask("find x"),
            {"role": "assistant", "content": None, "tool_calls": [calls[0].model_dump()]},
            {"role": "tool", "tool_call_id": calls[0].id, "content": "x is 42"},
        ],
    )
    assert followup.choices[0].message.content == "tool said: x is 42"


def test_n_choices_and_the_output_budget(world: World) -> None:
    buyer = world.consumer()
    answer = world.client(buyer.consumption_key).chat.completions.create(
        model=PRIME, messages=ask("w1 w2 w3 w4 w5"), n=2, max_tokens=3
    )
    assert [c.message.content for c in answer.choices] == ["echo: w1 w2"] * 2
    assert {c.finish_reason for c in answer.choices} == {"length"}
    assert answer.usage is not None and answer.usage.completion_tokens == 6
    assert world.settled(buyer) == [answer.usage.total_tokens]


def test_without_supplier_usage_the_local_count_is_billed(world: World) -> None:
    buyer = world.consumer()
    answer = world.client(buyer.consumption_key).chat.completions.create(
        model=PRIME, messages=ask("count me locally #mode:nousage")
    )
    assert answer.usage is not None
    counter = TokenCounter()
    expected_prompt = counter.count_prompt(ask("count me locally #mode:nousage"))
    assert answer.usage.prompt_tokens == expected_prompt
    assert answer.usage.completion_tokens == counter.count_text("echo: count me locally")
    assert world.settled(buyer) == [answer.usage.total_tokens]


# -- failover and failed deliveries --------------------------------------------------------------


def usd_available(party: Party) -> Decimal:
    usd = party.account.data("GET", "/v1/currency-trading-accounts/USD")
    return Decimal(usd["available_balance"])


def test_a_failure_before_the_first_byte_fails_over(world: World) -> None:
    """A's endpoint fails before the first byte, B's delivers: A, whose units funded the lot,
    pays B for the tokens (4 tokens at 1.000 USD a million: 4 micro-USD a call), and the
    receipt says so."""
    buyer = world.consumer()
    seen_b = len(world.b.requests)
    usd_a, usd_b = usd_available(world.supplier_a), usd_available(world.supplier_b)
    client = world.client(buyer.consumption_key)
    answer = client.chat.completions.create(model=PRIME, messages=ask("go #mode:fail500@a"))
    assert answer.choices[0].message.content == "echo: go"
    assert world.b.requests[-1]["model"] == "fake-b"
    chunks = list(
        client.chat.completions.create(
            model=PRIME, messages=ask("again #mode:empty@a"), stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: again"
    assert len(world.b.requests) == seen_b + 2
    assert world.settled(buyer) == [(2 + 2) + (2 + 2)]

    paid = Decimal("0.000008")
    assert usd_available(world.supplier_a) == usd_a - paid
    assert usd_available(world.supplier_b) == usd_b + paid
    receipt = buyer.account.data("GET", f"/v1/usage/{answer.id.removeprefix('chatcmpl-')}")
    assert receipt["supplier_id"] == world.supplier_b.account_id
    [substitution] = receipt["substitutions"]
    assert substitution["supplier_id"] == world.supplier_a.account_id
    assert substitution["substitute_id"] == world.supplier_b.account_id
    assert (substitution["tokens"], substitution["amount_usd"]) == (4, "0.000004")
    assert substitution["receivable_usd"] == "0.000"
    parsed = UsageReceipt.parse(receipt)  # as gridmarket.client reads it
    parsed_subs = [
        (s.supplier_id, s.substitute_id, s.tokens, s.amount_usd) for s in parsed.substitutions
    ]
    assert parsed_subs == [
        (world.supplier_a.account_id, world.supplier_b.account_id, 4, Decimal("0.000004"))
    ]
    assert audit_balanced(world.server)


def test_context_length_errors_are_not_retried_elsewhere(world: World) -> None:
    buyer = world.consumer()
    seen_b = len(world.b.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        world.client(buyer.consumption_key).chat.completions.create(
            model=PRIME, messages=ask("too long #mode:context400")
        )
    assert raised.value.code == "context_length_exceeded"
    assert len(world.b.requests) == seen_b
    assert world.settled(buyer) == [0]


@pytest.mark.parametrize("mode", ["disconnect", "nodone", "nofinish"])
def test_a_broken_stream_ends_with_an_in_band_error_and_costs_nothing(
    world: World, mode: str
) -> None:
    buyer = world.consumer()
    stream = world.client(buyer.consumption_key).chat.completions.create(
        model=PRIME, messages=ask(f"a b c d e f #mode:{mode}"), stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert received  # the failure came after the first chunk: in-band
    assert world.settled(buyer) == [0]


def test_a_stream_with_no_chunk_anywhere_is_a_503_and_costs_nothing(world: World) -> None:
    buyer = world.consumer()
    with pytest.raises(openai.APIStatusError) as raised:
        world.client(buyer.consumption_key).chat.completions.create(
            model=PRIME, messages=ask("x #mode:empty"), stream=True
        )
    assert raised.value.status_code == 503
    assert raised.value.response.headers["retry-after"].isdigit()
    assert world.settled(buyer) == [0]


def test_a_slow_first_token_is_awaited_with_pings(world: World) -> None:
    buyer = world.consumer()
    body = {"model": PRIME, "messages": ask("late #mode:slow #slow:3"), "stream": True}
    headers = {"Authorization": f"Bearer {buyer.consumption_key}"}
    url = f"{world.server.url}/v1/chat/completions"
    with httpx.stream("POST", url, json=body, headers=headers, timeout=20) as response:
        assert response.status_code == 200
        assert response.headers["x-request-id"]
        lines = [line for line in response.iter_lines() if line]
    assert lines[0] == ": ping"
    data = [line for line in lines if line.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    assert not any(line.startswith(("id:", "event:")) for line in lines)
    first_data = lines.index(data[0])
    assert all(line == ": ping" for line in lines[:first_data])
    assert ": ping" not in lines[first_data:]
    assert world.settled(buyer) == [3 + 2]


def test_a_caller_who_leaves_mid_stream_pays_only_for_what_was_generated(world: World) -> None:
    buyer = world.consumer()
    long_text = " ".join(f"w{i}" for i in range(60)) + " #mode:trickle"
    stream = world.client(buyer.consumption_key).chat.completions.create(
        model=PRIME, messages=ask(long_text), stream=True
    )
    for i, _ in enumerate(stream):
        if i == 4:
            break
    stream.close()
    [billed] = world.settled(buyer)
    counter = TokenCounter()
    prompt = counter.count_prompt(ask(long_text))
    full = counter.count_text("echo: " + " ".join(f"w{i}" for i in range(60)))
    assert prompt < billed < prompt + full


# -- metering: lots, caps, refusals --------------------------------------------------------------


def test_lots_are_drawn_in_order_and_the_funding_supplier_serves(world: World) -> None:
    buyer = world.consumer()  # a lot of supplier A's units
    offer(world.server, world.supplier_b, PRIME, 1, "0.900")  # cheaper: the next buy takes it
    buy_to_consumption(buyer, PRIME, 1)  # a second lot, of supplier B's units
    seen_a, seen_b = len(world.a.requests), len(world.b.requests)
    world.client(buyer.consumption_key).chat.completions.create(model=PRIME, messages=ask("x y"))
    assert (len(world.a.requests), len(world.b.requests)) == (seen_a + 1, seen_b)
    assert world.settled(buyer) == [2 + 3, 0]  # the older lot first (neither expires)


def test_the_key_spend_cap_is_enforced(world: World) -> None:
    buyer = world.consumer()
    created = world.server.admin(
        "POST",
        f"/v1/admin/accounts/{buyer.account_id}/api-keys",
        json={"api_key": {"name": "capped", "spend_cap_tokens": 400}},
    )
    assert created.status_code in (200, 201), created.text
    client = world.client(created.json()["data"]["key"])
    client.chat.completions.create(model=PRIME, messages=ask("fits"), max_tokens=100)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=PRIME, messages=ask("too much"), max_tokens=500)
    assert raised.value.status_code == 402
    assert raised.value.code == "spend_cap_reached"
    assert world.settled(buyer) == [1 + 2]


def test_no_tokens_is_a_402_and_no_supplier_a_503(world: World) -> None:
    broke = world.consumer(units=0)
    with pytest.raises(openai.APIStatusError) as raised:
        world.client(broke.consumption_key).chat.completions.create(model=PRIME, messages=ask("x"))
    assert raised.value.status_code == 402
    assert raised.value.code == "insufficient_tokens"

    holder = world.consumer(instrument=MAX)
    with pytest.raises(openai.APIStatusError) as unserved:
        world.client(holder.consumption_key).chat.completions.create(model=MAX, messages=ask("x"))
    assert unserved.value.status_code == 503
    assert unserved.value.code == "no_supplier"
    assert world.settled(holder, MAX) == [0]


def test_bad_requests_get_openai_errors_and_cost_nothing(world: World) -> None:
    buyer = world.consumer()
    client = world.client(buyer.consumption_key)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-4o", messages=ask("x"))
    assert not_found.value.code == "model_not_found"
    with pytest.raises(openai.UnprocessableEntityError) as out_of_range:
        client.chat.completions.create(model=PRIME, messages=ask("x"), temperature=3)
    assert out_of_range.value.param == "temperature"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=PRIME, messages=[])  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as unknown:
        client.chat.completions.create(model=PRIME, messages=ask("x"), extra_body={"bogus": 1})
    assert unknown.value.code == "unrecognized_field"
    url = f"{world.server.url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {buyer.consumption_key}"}
    for raw in (b"{not json", b"[]", b'{"model": "text-prime", "messages": "hi"}'):
        response = httpx.post(url, content=raw, headers=headers, timeout=10)
        assert response.status_code == 400, response.text
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
    assert httpx.post(url + "/", content=b"{}", headers=headers).status_code == 400  # no 307
    assert world.settled(buyer) == [0]


def test_keys_are_checked_on_every_consumption_path(world: World) -> None:
    buyer = world.consumer()
    for key in ("nope", "gm-" + "x" * 43):
        client = world.client(key)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model=PRIME, messages=ask("x"))
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
    missing = httpx.post(f"{world.server.url}/v1/chat/completions", json={}, timeout=10)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    models = world.client(buyer.consumption_key).models.list()
    assert PRIME in {m.id for m in models.data}
    assert all(m.object == "model" for m in models.data)

    created = world.server.admin(
        "POST", f"/v1/admin/accounts/{buyer.account_id}/api-keys", json={"api_key": {"name": "k"}}
    ).json()["data"]
    client = world.client(created["key"])
    client.chat.completions.create(model=PRIME, messages=ask("x"))  # cached now
    path = f"/v1/admin/accounts/{buyer.account_id}/api-keys/{created['id']}"
    assert world.server.admin("DELETE", path).status_code in (200, 204)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model=PRIME, messages=ask("x"))


def test_the_ledger_balances_after_all_of_it(world: World) -> None:
    assert audit_balanced(world.server)


def test_the_per_key_rate_limit_is_a_429_with_retry_after(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("gateway-rate") / "home"
    server = ServerWithArgs(home, ["--consumption-rate-limit", "2"])
    try:
        party = open_party(server)
        client = openai.OpenAI(
            api_key=party.consumption_key, base_url=f"{server.url}/v1", max_retries=0
        )
        for _ in range(2):
            with pytest.raises(openai.APIStatusError) as first:
                client.chat.completions.create(model=PRIME, messages=ask("x"))
            assert first.value.status_code == 402  # admitted, but holds no tokens
        with pytest.raises(openai.RateLimitError) as limited:
            client.chat.completions.create(model=PRIME, messages=ask("x"))
        assert int(limited.value.response.headers["retry-after"]) >= 1
    finally:
        server.kill()


def test_an_endpoint_of_an_unknown_account_stops_the_start_up(tmp_path: Path) -> None:
    entry = "text-prime=http://127.0.0.1:9/v1;account=acct_nobody"
    command = [
        str(Path(sys.executable).with_name("gridmarket")),
        "serve",
        "--port",
        str(free_port()),
        "--data-dir",
        str(tmp_path / "home"),
        "--supplier",
        entry,
    ]
    done = subprocess.run(command, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "acct_nobody" in done.stdout + done.stderr


# -- the wire, against OpenAI's own OpenAPI document, and /metrics ----------------------------


def test_answers_chunks_and_errors_match_openais_openapi_document(world: World) -> None:
    buyer = world.consumer()
    url = f"{world.server.url}/v1/chat/completions"
    headers = {"authorization": f"Bearer {buyer.consumption_key}"}
    with httpx.Client(timeout=30) as client:
        answer = client.post(url, headers=headers, json={"model": PRIME, "messages": ask("hi")})
        assert answer.status_code == 200, answer.text
        validate_openai("CreateChatCompletionResponse", answer.json())
        body = {
            "model": PRIME,
            "messages": ask("stream me"),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        chunks = []
        with client.stream("POST", url, headers=headers, json=body) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunks.append(json.loads(line[len("data: ") :]))
        assert len(chunks) >= 2 and chunks[-1]["usage"] is not None
        for chunk in chunks:
            validate_openai_chunk(chunk)
        refused = client.post(url, headers=headers, json={"model": "no-such", "messages": []})
        assert refused.status_code in (400, 404)
        validate_openai_error(refused.json())
        models = client.get(f"{world.server.url}/v1/models", headers=headers)
        validate_openai("ListModelsResponse", models.json())


def test_metrics_carry_the_gateways_overhead_and_ttft_per_supplier(world: World) -> None:
    buyer = world.consumer()
    client = world.client(buyer.consumption_key)
    client.chat.completions.create(model=PRIME, messages=ask("measure me"))
    # A stream too: time to first token is a stream's measure.
    list(client.chat.completions.create(model=PRIME, messages=ask("and me"), stream=True))
    world.settled(buyer)
    text = httpx.get(f"{world.server.url}/metrics", timeout=10).text
    counts = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith(("gridmarket_gateway_overhead_seconds_count", "gridmarket_gateway_ttft"))
        and "_count" in line
    }
    overhead = [v for k, v in counts.items() if k.startswith("gridmarket_gateway_overhead")]
    ttft = [v for k, v in counts.items() if k.startswith("gridmarket_gateway_ttft")]
    assert overhead and sum(overhead) >= 1, text[:2000]
    assert ttft and sum(ttft) >= 1


def _requests_counted(world: World) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{world.server.url}/metrics", timeout=10).text
    return {
        (sample.labels["instrument"], sample.labels["outcome"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "gridmarket_gateway_requests_total"
    }


def test_metrics_count_every_request_by_instrument_and_outcome(world: World) -> None:
    before = _requests_counted(world)
    buyer = world.consumer()
    client = world.client(buyer.consumption_key)
    client.chat.completions.create(model=PRIME, messages=ask("count me"))
    list(client.chat.completions.create(model=PRIME, messages=ask("and me"), stream=True))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model-" + "x" * 40, messages=ask("hi"))
    broke = world.consumer(units=0)
    with pytest.raises(openai.APIStatusError):
        world.client(broke.consumption_key).chat.completions.create(
            model=PRIME, messages=ask("no tokens")
        )
    after = _requests_counted(world)

    def added(instrument: str, outcome: str) -> float:
        return after.get((instrument, outcome), 0) - before.get((instrument, outcome), 0)

    assert added(PRIME, "ok") == 2
    # An unknown model is counted as `unknown`: a client's text never becomes a label.
    assert added("unknown", "model_not_found") == 1
    assert added(PRIME, "insufficient_tokens") == 1
    assert not any(instrument.startswith("no-such") for instrument, _ in after)


def test_the_anthropic_surface_runs_on_the_real_gateway_and_is_billed(world: World) -> None:
    buyer = world.consumer()
    client = anthropic.Anthropic(
        api_key=buyer.consumption_key, base_url=world.server.url, max_retries=0
    )
    message = client.messages.create(
        model=PRIME, max_tokens=50, messages=[{"role": "user", "content": "claude says hi"}]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: claude says hi"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 4)
    events = []
    with client.messages.stream(
        model=PRIME, max_tokens=50, messages=[{"role": "user", "content": "stream it"}]
    ) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].text == "echo: stream it"
    counted = client.messages.count_tokens(
        model=PRIME, messages=[{"role": "user", "content": "claude says hi"}]
    )
    assert counted.input_tokens > 0
    # Both calls are billed what the supplier reported (the fake counts words): 3 + 4 tokens,
    # then 2 ("stream it") + 3 ("echo: stream it").
    assert sum(world.settled(buyer)) == 7 + 5


def test_an_auto_mode_account_holding_only_usd_buys_on_the_book_and_gets_its_answer(
    world: World,
) -> None:
    easy = open_party(world.server, mode="easy", deposit="50")
    usd_before = Decimal(
        easy.account.data("GET", "/v1/currency-trading-accounts/USD")["available_balance"]
    )
    answer = world.client(easy.consumption_key).chat.completions.create(
        model=PRIME, messages=ask("auto mode please")
    )
    assert answer.choices[0].message.content == "echo: auto mode please"
    # One unit was bought at the resting ask (1.000 USD, plus the taker fee) and moved straight
    # to consumption; the call was billed from it.
    assert world.settled(easy) == [3 + 4]
    usd_after = Decimal(
        easy.account.data("GET", "/v1/currency-trading-accounts/USD")["available_balance"]
    )
    assert Decimal("1.000") <= usd_before - usd_after < Decimal("1.100")
    trades = easy.account.data("GET", "/v1/trades")
    assert [(t["side"], t["quantity"]) for t in trades] == [("buy", "1")]
