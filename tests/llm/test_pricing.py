"""The dated price table and cost maths: lookup rules, cached and reasoning tokens, tiers, unknowns."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from aixpy.llm import PRICES_AS_OF, Price, TestModel, Usage, cost_of, price_for, register_price
from aixpy.llm import pricing as pricing_module


@pytest.fixture(autouse=True)
def _clean_user_prices() -> Iterator[None]:
    yield
    pricing_module._user_prices.clear()
    pricing_module._lookup.cache_clear()


def per_1m(model: str, provider: str | None = None) -> tuple[float, float]:
    found = price_for(model, provider=provider)
    assert found is not None, model
    return found[1].input, found[1].output


# The provider integration guide quotes $ per 1K tokens; the table is $ per 1M.
GUIDE = {
    "gpt-4": (30, 60), "gpt-4-turbo": (10, 30), "gpt-3.5-turbo": (0.5, 1.5),
    "claude-3-opus": (15, 75), "claude-3-sonnet": (3, 15), "claude-3-haiku": (0.25, 1.25),
    "gemini-1.5-pro": (1.25, 5), "gemini-1.5-flash": (0.075, 0.3),
}


@pytest.mark.parametrize(("model", "prices"), sorted(GUIDE.items()))
def test_every_guide_model_is_priced(model: str, prices: tuple[float, float]) -> None:
    assert per_1m(model) == prices


@pytest.mark.parametrize("model", [
    "gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini", "gpt-5", "gpt-5-mini",
    "claude-3-5-sonnet", "claude-3-7-sonnet", "claude-sonnet-4", "claude-sonnet-4-5", "claude-haiku-4-5",
    "claude-opus-4-1", "claude-opus-4-5", "gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro", "grok-3",
    "grok-3-mini", "grok-4", "grok-4-fast",
])
def test_current_models_of_each_provider_are_priced(model: str) -> None:
    assert price_for(model) is not None


def test_table_is_dated() -> None:
    assert isinstance(PRICES_AS_OF, date)
    assert PRICES_AS_OF.year >= 2025


@pytest.mark.parametrize(("model", "entry"), [
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),       # an exact dated entry wins (it cost more)
    ("gpt-4o-2024-08-06", "gpt-4o"),                  # else the dated suffix is stripped
    ("GPT-4O-MINI-2024-07-18", "gpt-4o-mini"),
    ("o3-mini-2025-01-31", "o3-mini"),
    ("gpt-4o-mini-search-preview", "gpt-4o-mini"),    # longest prefix up to a '-'
    ("gpt-4-0613", "gpt-4"),
    ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
    ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
    ("claude-3.5-sonnet", "claude-3-5-sonnet"),       # the dotted spelling of aixgo's table
    ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),  # Vertex AI's spelling
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-3-opus-latest", "claude-3-opus"),
    ("models/gemini-2.5-flash", "gemini-2.5-flash"),
    ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
    ("gemini-1.5-flash-002", "gemini-1.5-flash"),
    ("grok-4-0709", "grok-4"),
    ("grok-4-fast-reasoning", "grok-4-fast"),
])
def test_lookup_rules(model: str, entry: str) -> None:
    found = price_for(model)
    assert found is not None
    assert found[0] == entry


@pytest.mark.parametrize("model", ["gpt-4.7", "gpt-", "llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct",
                                   "mistral-large", "claude", "gemini"])
def test_unknown_models_have_no_price(model: str) -> None:
    assert price_for(model) is None
    cost = cost_of(model, Usage(100, 100))
    assert cost.usd is None
    assert cost.known is False


def test_ollama_is_free_for_any_model() -> None:
    assert cost_of("llama3.1:8b", Usage(10_000, 10_000), provider="ollama").usd == 0.0
    assert cost_of("ollama/anything", Usage(1, 1)).usd == 0.0


def test_no_usage_means_unknown_cost_not_zero() -> None:
    cost = cost_of("gpt-4o", None)
    assert cost.usd is None
    assert not cost.known
    assert cost.model == "gpt-4o"


def test_cached_tokens_priced_at_the_cached_rate_and_not_double_counted() -> None:
    usage = Usage(input_tokens=1000, output_tokens=100, cached_input_tokens=800)
    assert cost_of("gpt-4o", usage).usd == pytest.approx((200 * 2.5 + 800 * 1.25 + 100 * 10) / 1e6)


def test_reasoning_tokens_priced_as_output_once() -> None:
    usage = Usage(input_tokens=100, output_tokens=500, reasoning_tokens=400)
    assert cost_of("o3", usage).usd == pytest.approx((100 * 2 + 500 * 8) / 1e6)


def test_anthropic_cache_reads_and_writes() -> None:
    usage = Usage(input_tokens=2110, output_tokens=50, cached_input_tokens=2000, cache_creation_tokens=100)
    expected = (10 * 3 + 2000 * 0.3 + 100 * 3.75 + 50 * 15) / 1e6
    assert cost_of("claude-sonnet-4-20250514", usage).usd == pytest.approx(expected)


def test_model_without_a_cached_rate_prices_cached_tokens_as_input() -> None:
    assert cost_of("gpt-4", Usage(1000, 0, cached_input_tokens=500)).usd == pytest.approx(1000 * 30 / 1e6)


def test_long_context_tier_applies_to_the_whole_call() -> None:
    short = cost_of("gemini-2.5-pro", Usage(200_000, 1000)).usd
    long = cost_of("gemini-2.5-pro", Usage(200_001, 1000)).usd
    assert short == pytest.approx((200_000 * 1.25 + 1000 * 10) / 1e6)
    assert long == pytest.approx((200_001 * 2.5 + 1000 * 15) / 1e6)
    tiered = Price(1, 2, 0.5, None, 100, 2, 4).for_prompt(101)
    assert (tiered.input, tiered.output, tiered.cached_input) == (2, 4, 1.0)


def test_register_price_overrides_and_extends() -> None:
    register_price("my-finetune", Price(1.0, 2.0))
    assert cost_of("my-finetune-v2", Usage(1_000_000, 1_000_000)).usd == pytest.approx(3.0)
    register_price("gpt-4o", Price(100.0, 100.0))
    assert per_1m("gpt-4o-2024-11-20") == (100.0, 100.0)


def test_cost_on_every_answer_streamed_or_not() -> None:
    register_price("priced-test-model", Price(1.0, 1.0))
    model = TestModel("one two three", "one two three", model="priced-test-model")
    plain = model.chat("a b")
    with model.stream("a b") as s:
        streamed = s.get_response()
    assert plain.cost_usd == streamed.cost_usd == pytest.approx((2 + 3) / 1e6)
    assert TestModel().chat("x").cost_usd is None  # the test provider's model has no price
