"""ASGI entry point for ``portal serve``: ``uvicorn --factory portal.web.asgi:create_asgi_app``."""

from __future__ import annotations

from litestar import Litestar

from portal.config import load_settings
from portal.logs import configure_logging
from portal.platform import Platform
from portal.web.app import create_app


def create_asgi_app() -> Litestar:
    """Build the app from the environment (each server worker calls this once, in its own process)."""
    settings = load_settings()
    configure_logging(settings.log_level, fmt=settings.log_format)
    return create_app(Platform(settings))
