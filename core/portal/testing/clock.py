"""A sandbox merchant's test clock, moved through the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from portal.testing.merchants import TestMerchant


class TestClock:
    """A sandbox merchant's test clock, moved through the API as a merchant's own tests would."""

    __test__ = False

    def __init__(self, merchant: TestMerchant) -> None:
        self._merchant = merchant

    async def now(self) -> datetime:
        """The time the merchant's renewals and charges see (the real time until the clock moves)."""
        client = await self._merchant.api_client()
        response = await client.get("/test-clock")
        assert response.status_code == 200, response.text
        return datetime.fromisoformat(response.json()["now"])

    async def advance(self, by: timedelta | str | None = None, *, to: datetime | None = None) -> dict[str, Any]:
        """Move the clock ``by`` a duration (``timedelta`` or ``"31d"``, ``"36h"``, ``"90m"``) or ``to`` a time.

        Every renewal, cancellation and charge that falls due on the way runs before it returns.

        Returns the API's report (``previous``, ``now``, ``renewed``, ``invoices``, ...). It only moves forward.
        """
        if (by is None) == (to is None):
            raise ValueError("give exactly one of by and to")
        body: dict[str, str] = {}
        if to is not None:
            body["to"] = to.astimezone(UTC).isoformat()
        elif isinstance(by, timedelta):
            body["by"] = _duration(by)
        else:
            body["by"] = str(by)
        client = await self._merchant.api_client()
        response = await client.post("/test-clock/advance", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())


def _duration(by: timedelta) -> str:
    """``by`` as the API spells a duration: whole days, hours or minutes (``31d``, ``36h``, ``90m``)."""
    minutes, rest = divmod(by, timedelta(minutes=1))
    if rest or minutes <= 0:
        raise ValueError(f"the clock moves by whole minutes, not {by}")
    for unit, size in (("d", 1440), ("h", 60), ("m", 1)):
        if minutes % size == 0 and minutes // size < 1000:
            return f"{minutes // size}{unit}"
    raise ValueError(f"{by} is too far for one move; advance to= a time instead")
