"""The started platform of a worker process, for tasks that need it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from portal.platform import Platform

_platform: Platform | None = None


def set_platform(platform: Platform) -> None:
    """Record the platform tasks of this process run against."""
    global _platform
    _platform = platform


def current_platform() -> Platform:
    """The platform of this worker process."""
    if _platform is None:
        raise RuntimeError("no platform is running in this process")
    return _platform
