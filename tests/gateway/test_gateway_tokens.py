"""The offline tokenizer against llama.cpp's own, and the prompt count's rules."""

from __future__ import annotations

import pytest

from gridmarket.gateway.tokens import (
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    TokenCounter,
    smollm2_gguf_path,
)

SAMPLES = [
    "Hello, world!",
    "The year 2026 had 365 days; 1234567 is a number.",
    "  multiple   spaces\n\nnew lines\ttabs  ",
    "naïve café — 日本語のテキスト 🤖 emoji",
    "def f(x):\n    return x**2  # square\n",
    '{"name": "lookup", "arguments": {"q": "x"}}',
    "<|im_start|>user\nhi<|im_end|>",
    "don't won't I'm you're they'll",
]


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter()


def test_the_tokenizer_matches_llama_cpp_token_for_token(counter: TokenCounter) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    llama = llama_cpp.Llama(model_path=str(smollm2_gguf_path()), vocab_only=True, verbose=False)
    tokenizer = counter._tokenizer or counter._load()
    for text in SAMPLES:
        ours = tokenizer.encode(text, add_special_tokens=False).ids
        theirs = llama.tokenize(text.encode(), add_bos=False, special=False)
        assert ours == theirs, text
        assert counter.count_text(text) == len(theirs)


def test_a_prompt_counts_its_texts_and_a_small_overhead(counter: TokenCounter) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is 2+2?"}]},
    ]
    texts = ["system", "Be brief.", "user", "What is 2+2?"]
    expected = sum(counter.count_text(t) for t in texts)
    expected += 2 * MESSAGE_OVERHEAD_TOKENS + REPLY_PRIMING_TOKENS
    assert counter.count_prompt(messages) == expected
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert counter.count_prompt(messages, tools) > expected
    with_call = [
        *messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
    ]
    assert counter.count_prompt(with_call) > expected + MESSAGE_OVERHEAD_TOKENS


async def test_counting_off_the_loop_gives_the_same_answer(counter: TokenCounter) -> None:
    messages = [{"role": "user", "content": "word " * 2000}]
    assert await counter.count_prompt_async(messages) == counter.count_prompt(messages)
