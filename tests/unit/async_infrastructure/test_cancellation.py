from __future__ import annotations

import asyncio
import threading

import pytest

from ktrdr.async_infrastructure.cancellation import (
    CancellationToken,
    ThreadingCancellationToken,
    check_cancelled,
)
from ktrdr.errors import CancellationError

pytestmark = pytest.mark.unit


def test_token_follows_the_protocol() -> None:
    token = ThreadingCancellationToken()
    assert isinstance(token, CancellationToken)
    assert not token.is_cancelled() and not token.is_cancelled_requested
    token.cancel("user asked")
    token.cancel("second reason is ignored")
    assert token.is_cancelled() and token.is_cancelled_requested
    assert token.reason == "user asked"


def test_check_raises_with_reason_and_place() -> None:
    token = ThreadingCancellationToken()
    check_cancelled(token, "step 3")
    check_cancelled(None, "step 3")
    token.cancel("Ctrl-C")
    with pytest.raises(CancellationError, match="Ctrl-C during step 3"):
        check_cancelled(token, "step 3")


def test_cancel_from_many_threads_at_once() -> None:
    token = ThreadingCancellationToken()
    threads = [threading.Thread(target=token.cancel, args=(f"t{i}",)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert token.is_cancelled() and token.reason is not None and token.reason.startswith("t")


def test_wait_for_cancellation_wakes_on_a_cancel_from_another_thread() -> None:
    token = ThreadingCancellationToken()

    async def scenario() -> bool:
        waiter = asyncio.create_task(token.wait_for_cancellation())
        await asyncio.sleep(0.01)
        assert not waiter.done()
        threading.Timer(0.02, token.cancel).start()
        await asyncio.wait_for(waiter, timeout=2)
        await token.wait_for_cancellation()  # already cancelled: returns at once
        return True

    assert asyncio.run(scenario())
