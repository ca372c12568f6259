"""What a client of either service sends (the shared token) and reads back (a failure's detail).

Kept apart from the services' own checks so that a client imports httpx only, never the server.
"""

from __future__ import annotations

import httpx


def bearer_headers(token: str | None) -> dict[str, str]:
    """The header a client sends with ``token`` (none without one)."""
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def error_detail(response: httpx.Response) -> str:
    """What a failed answer from either service says: its JSON ``detail``, else its text."""
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:300]
