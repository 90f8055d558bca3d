"""The composition root: the one place that builds Gridmarket from its parts.

`gridmarket serve` runs `build_app(settings)`. Tests assemble their own app with
`gridmarket.api.app.create_app` and fakes instead; nothing else reaches for globals.
"""

from __future__ import annotations

from fastapi import FastAPI

from gridmarket.api.app import create_app
from gridmarket.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    """The production app for `settings`."""
    # The market service (sequencer + store) plugs in here and nowhere else: pass its factory,
    # an async context manager taking the settings, e.g.
    #     return create_app(settings, service_factory=open_market_service)
    return create_app(settings, service_factory=None)
