"""The consumption gateway: OpenAI- and Anthropic-shaped inference, paid for by tokens bought
on the book (DESIGN sections 8-10). `contract` holds the types its parts agree on."""
