"""`python -m gridmarket`: the same as the `gridmarket` command."""

from gridmarket.cli import app

app(prog_name="gridmarket")
