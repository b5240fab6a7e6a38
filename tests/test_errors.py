from __future__ import annotations

import pytest

from aixpy import errors
from aixpy.errors import (
    AixpyError,
    AllProvidersFailedError,
    ConfigError,
    DimensionMismatchError,
    InvalidInputError,
    MissingDependencyError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
    UserError,
    redact,
)


def test_every_public_error_is_in_the_tree_and_the_docstring() -> None:
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, AixpyError)
            assert name in doc, f"{name} is not drawn in the errors docstring"


def test_user_errors_vs_provider_errors() -> None:
    assert issubclass(ConfigError, UserError)
    assert issubclass(DimensionMismatchError, InvalidInputError)
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(MissingDependencyError, ImportError)
    assert issubclass(NotFoundError, LookupError)
    assert not issubclass(ProviderError, UserError)


def test_provider_error_fields_and_retryable_defaults() -> None:
    e = RateLimitError("slow down", provider="openai", model="gpt-4o", status_code=429, retry_after=2.5)
    assert (e.provider, e.model, e.status_code, e.retryable, e.retry_after) == ("openai", "gpt-4o", 429, True, 2.5)
    assert str(e) == "slow down (provider=openai, model=gpt-4o, status=429)"
    assert ServerError("x").retryable is True
    assert ProviderError("x").retryable is False
    assert ProviderError("x", retryable=True).retryable is True


def test_provider_error_never_shows_keys() -> None:
    key = "sk-proj-abcdefghijklmnop1234567890"
    e = ProviderError(f"bad request with key {key}", body=f'{{"error": "Incorrect API key provided: {key}"}}')
    assert key not in str(e)
    assert key not in repr(e)
    assert key not in (e.body or "")
    assert "sk-proj-***" in str(e)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdef123456789", "abcdef123456789"),
        ("x-api-key: sk-ant-api03-XYZXYZXYZXYZ", "XYZXYZXYZXYZ"),
        ("https://host/v1?key=AIzaSyA1234567890abcdefghijk", "AIzaSyA1234567890abcdefghijk"),
        ("postgresql://user:hunter2secret@db/x", "hunter2secret"),
        ("token=hf_abcdefghijklmnop", "hf_abcdefghijklmnop"),
        ('{"api_key": "my-very-secret"}', "my-very-secret"),
        ("xai-abcdefghijklmnopq used", "abcdefghijklmnopq"),
    ],
)
def test_redact(text: str, secret: str) -> None:
    assert secret not in redact(text)


def test_redact_explicit_secret() -> None:
    assert redact("value plainsecretvalue here", ["plainsecretvalue"]) == "value *** here"


def test_config_error_names_file_path_line() -> None:
    e = ConfigError("unknown key 'modle'", file="a.yaml", path="agents[0].modle", line=7)
    assert str(e) == "a.yaml:7 agents[0].modle: unknown key 'modle'"
    assert (e.file, e.path, e.line) == ("a.yaml", "agents[0].modle", 7)


def test_dimension_mismatch_and_all_failed() -> None:
    e = DimensionMismatchError(384, 768)
    assert (e.expected, e.got) == (384, 768)
    assert "768" in str(e)
    agg = AllProvidersFailedError([ServerError("a"), ProviderError("b")])
    assert agg.retryable is True
    assert len(agg.errors) == 2
    assert "ServerError: a" in str(agg)
