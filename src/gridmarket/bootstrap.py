"""The composition root: the one place that builds Gridmarket from its parts.

`gridmarket serve` runs `build_app(settings)`. Tests assemble their own app with
`gridmarket.api.app.create_app` and fakes instead; nothing else reaches for globals.
"""

from __future__ import annotations

from fastapi import FastAPI

from gridmarket.api.app import create_app
from gridmarket.service.runtime import open_market
from gridmarket.settings import Settings


def build_app(settings: Settings) -> FastAPI:
    """The production app for `settings`."""
    return create_app(settings, service_factory=open_market)
