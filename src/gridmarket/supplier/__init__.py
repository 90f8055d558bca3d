"""The built-in supplier: a small real language model on the CPU, served over OpenAI's protocol
by its own process (`local_server`), owned by `gridmarket serve` (`process`), and quoted on the
`text-local` book by the built-in supply agent (`agent`)."""
