"""FallbackEmbeddings: order, same dimensions, user errors never masked, AllProvidersFailedError, deadline."""

from __future__ import annotations

import numpy as np
import pytest

from aixpy.embeddings.policies import FallbackEmbeddings, deadline
from aixpy.errors import (
    AllProvidersFailedError,
    AuthenticationError,
    ConfigError,
    InvalidInputError,
    InvalidRequestError,
    PartialBatchError,
    RateLimitError,
    ServerError,
)
from aixpy.llm.deadline import DeadlineExceededError, ManualClock

from ._fakes import Scripted, reference


def test_dimensions_must_match_at_construction() -> None:
    with pytest.raises(ConfigError) as info:
        FallbackEmbeddings([Scripted(dims=32, provider="openai", model="m1"), Scripted(dims=16, provider="tei",
                                                                                      model="m2")])
    assert "openai:m1=32" in str(info.value)
    assert "tei:m2=16" in str(info.value)
    assert info.value.path == "embeddings.fallback"


def test_learned_dimensions_are_checked_on_first_answer() -> None:
    primary = Scripted(dims=32, script=[ServerError("down")])
    backup = Scripted(dims=16, provider="ollama", unknown_dims=True)
    svc = FallbackEmbeddings([primary, backup])
    with pytest.raises(ConfigError, match="ollama:scripted=16"):
        svc.embed("a")


def test_primary_serves_when_it_works_and_model_is_the_primarys() -> None:
    a, b = Scripted(provider="openai", model="m"), Scripted(provider="tei", model="m")
    svc = FallbackEmbeddings([a, b])
    assert (svc.provider, svc.model(), svc.dimensions()) == ("openai", "m", 32)
    np.testing.assert_array_equal(svc.embed_array(["x", "y"]), reference(["x", "y"]))
    assert (len(a.requests), len(b.requests)) == (1, 0)
    assert svc.served == {"openai:m": 1}


@pytest.mark.parametrize("error", [ServerError("5xx"), RateLimitError("429"), AuthenticationError("key"),
                                   InvalidRequestError("no such model", status_code=404)])
def test_provider_failures_fall_back(error: Exception) -> None:
    a, b = Scripted(provider="openai", script=[error]), Scripted(provider="tei")
    svc = FallbackEmbeddings([a, b])
    np.testing.assert_array_equal(svc.embed_array(["x"]), reference(["x"]))
    assert svc.served == {"tei:scripted": 1}


@pytest.mark.parametrize("error", [InvalidInputError("text 0 is too long for this model"),
                                   InvalidRequestError("bad request", status_code=400),
                                   KeyError("a bug")])
def test_user_errors_and_bugs_are_not_masked(error: Exception) -> None:
    a, b = Scripted(script=[error]), Scripted()
    svc = FallbackEmbeddings([a, b])
    with pytest.raises(type(error)) as info:
        svc.embed("x")
    assert info.value is error
    assert b.requests == []


def test_bad_input_is_rejected_before_any_provider() -> None:
    a, b = Scripted(), Scripted()
    with pytest.raises(InvalidInputError, match="text 1 is empty"):
        FallbackEmbeddings([a, b]).embed_batch(["ok", "  "])
    assert a.requests == b.requests == []


def test_all_failed_lists_every_error_in_order() -> None:
    e1, e2 = ServerError("first"), RateLimitError("second", retry_after=2.0)
    svc = FallbackEmbeddings([Scripted(script=[e1]), Scripted(script=[e2])])
    with pytest.raises(AllProvidersFailedError) as info:
        svc.embed("x")
    assert info.value.errors == [e1, e2]
    assert info.value.retryable
    assert info.value.__cause__ is e2


def test_partial_batch_sends_only_failed_texts_to_the_next_provider() -> None:
    a = Scripted(batch_size=2, fail_text={"c": [ServerError("x")]})
    b = Scripted()
    svc = FallbackEmbeddings([a, b])
    out = svc.embed_array(["a", "b", "c", "d", "e"])
    np.testing.assert_array_equal(out, reference(["a", "b", "c", "d", "e"]))
    assert b.requests == [["c", "d"]]


def test_partial_then_all_failed_keeps_what_arrived() -> None:
    a = Scripted(batch_size=1, fail_text={"b": [ServerError("x")]})
    b = Scripted(script=[ServerError("y")])
    with pytest.raises(PartialBatchError) as info:
        FallbackEmbeddings([a, b]).embed_batch(["a", "b"])
    assert info.value.failed == [1]
    assert isinstance(info.value.errors[0], AllProvidersFailedError)
    np.testing.assert_array_equal(np.array([info.value.vectors[0]]), reference(["a"]))


def test_deadline_stops_the_chain() -> None:
    clock = ManualClock()
    a = Scripted(script=[ServerError("slow then down")], on_request=lambda _: clock.advance(5.0))
    b = Scripted()
    svc = FallbackEmbeddings([a, b], clock=clock)
    with deadline(3.0, clock=clock), pytest.raises(AllProvidersFailedError) as info:
        svc.embed("x")
    assert isinstance(info.value.errors[1], DeadlineExceededError)
    assert b.requests == []


async def test_async_twin() -> None:
    a, b = Scripted(script=[ServerError("5xx")]), Scripted()
    svc = FallbackEmbeddings([a, b])
    np.testing.assert_array_equal(await svc.aembed_array(["x", "y"]), reference(["x", "y"]))
    assert (len(a.requests), len(b.requests)) == (1, 1)
    with pytest.raises(InvalidInputError):
        await FallbackEmbeddings([Scripted(script=[InvalidInputError("no")]), b]).aembed("x")
