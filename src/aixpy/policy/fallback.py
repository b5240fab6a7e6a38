"""The default fallback rule and the one fallback plan (a cascade: targets tried in order, first answer wins).

:func:`provider_failed` is the rule both layers start from: every
:class:`~aixpy.errors.ProviderError` (rate limit, exhausted quota, timeout, connection, 5xx,
authentication — another provider has its own key —, unparseable answer) and a 404/413
:class:`~aixpy.errors.InvalidRequestError` (that provider does not serve the model, or not at that
size) move on; **not** other 400/422 rejections (the request itself is wrong and would fail
everywhere, costing money each time), nor the caller's own mistakes, nor bugs (non-aixpy exceptions).

The plan checks the call's deadline before each fallback (a passed deadline ends the chain with a
:class:`~aixpy.policy.deadline.DeadlineExceededError` naming the provider not tried); a
:class:`~aixpy.errors.PartialBatchError` always moves on, with only its failed part; when every target
failed, :class:`~aixpy.errors.AllProvidersFailedError` lists each error in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from aixpy.errors import AllProvidersFailedError, InvalidRequestError, PartialBatchError, ProviderError
from aixpy.policy.deadline import Deadline, DeadlineExceededError
from aixpy.policy.engine import Attempt, StepPlan, Work

__all__ = ["fallback_plan", "provider_failed"]

R = TypeVar("R")
T = TypeVar("T")


def provider_failed(err: BaseException) -> bool:
    """The default rule: whether ``err`` moves the call on to the next provider (see the module docstring)."""
    if isinstance(err, InvalidRequestError):
        return err.status_code in (404, 413)
    return isinstance(err, ProviderError)


def fallback_plan(count: int, work: Work[R, T], *, deadline: Deadline, fallback_on: Callable[[BaseException], bool],
                  name: Callable[[int], tuple[str, str]], logger: logging.Logger,
                  served: Callable[[int, R], None] | None = None) -> StepPlan[T]:
    """Attempt targets ``0 .. count - 1`` in order until one answers. ``name(i)`` is target i's
    ``(provider, model)``; ``served(i, reply)`` sees the answer first (it may reject it by raising)."""
    errors: list[BaseException] = []
    for i in range(count):
        if i and deadline.expired:
            provider, model = name(i)
            errors.append(DeadlineExceededError(f"the call's deadline passed before {provider}:{model} was tried",
                                                provider=provider, model=model))
            break
        try:
            reply: R = yield Attempt(i)
        except Exception as err:
            if isinstance(err, PartialBatchError):
                work.partial(err)
            elif not fallback_on(err):
                raise
            errors.append(err)
            if i + 1 < count:
                pending = work.outstanding()
                logger.info("%s failed (%s); falling back to %s%s", ":".join(name(i)), type(err).__name__,
                            ":".join(name(i + 1)), f" for {pending}" if pending else "")
            continue
        if served is not None:
            served(i, reply)
        return work.result(reply)
    raise work.failure(AllProvidersFailedError(errors)) from errors[-1]
