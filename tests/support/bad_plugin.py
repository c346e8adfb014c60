"""A plugin implementing a hook that does not exist: loading it must fail start-up."""

from portal.plugin import hookimpl


@hookimpl
def portal_no_such_hook() -> None:
    """Not a portal hook."""
