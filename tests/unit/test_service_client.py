"""What a client sends to either service and reads back from a failure."""

from __future__ import annotations

import httpx
import pytest

from ktrdr.service_client import bearer_headers, error_detail

pytestmark = pytest.mark.unit


def test_the_token_goes_in_a_bearer_header_and_no_token_sends_none() -> None:
    assert bearer_headers("s3cret") == {"Authorization": "Bearer s3cret"}
    assert bearer_headers(None) == {}


def test_a_failure_reads_as_its_detail_or_its_text() -> None:
    assert error_detail(httpx.Response(422, json={"detail": "bad symbol"})) == "bad symbol"
    long_text = "x" * 1000
    assert error_detail(httpx.Response(502, text=long_text)) == "x" * 300
