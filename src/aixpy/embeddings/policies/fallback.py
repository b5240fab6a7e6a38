"""``FallbackEmbeddings``: providers tried in order, per call (the guide's ``FallbackEmbeddingService``).

* All services must have the same ``dimensions()`` — checked when the chain is built, with a
  :class:`~aixpy.errors.ConfigError` naming each one, so a vector can never change size depending
  on which provider answered. (A provider that learns its dimensions from its first answer is
  checked on that answer, with the same error; nothing of another size is ever returned.)
  Use the same model on each (e.g. the same open model on TEI and on the HF Inference API):
  vectors of different models are not comparable even at equal sizes, so a chain mixing models
  logs a warning once, at construction.
* Falls back on provider failures: every :class:`~aixpy.errors.ProviderError` (rate limit, timeout,
  5xx, connection, authentication, unparseable answer) and a 404/413
  :class:`~aixpy.errors.InvalidRequestError`; **not** on other 400/422 rejections, nor on your own
  mistakes (:class:`~aixpy.errors.InvalidInputError` and every :class:`~aixpy.errors.UserError`),
  nor on bugs (non-aixpy exceptions): those propagate unmasked.
* A :class:`~aixpy.errors.PartialBatchError` sends only the failed texts to the next provider.
* The call's deadline is checked before each fallback; when every provider failed,
  :class:`~aixpy.errors.AllProvidersFailedError` lists each error in order (wrapped in a
  ``PartialBatchError`` if some texts did get vectors).

``provider``, ``model()`` and ``dimensions()`` are the primary's; ``served`` counts the calls each
provider answered.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from aixpy.embeddings.base import EmbeddingService
from aixpy.embeddings.policies._attempts import Attempts
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result, normalize_flag
from aixpy.errors import ConfigError, InvalidInputError
from aixpy.policy import Clock, StepPlan, acall, call, fallback_plan, provider_failed

__all__ = ["FallbackEmbeddings", "falls_back"]

logger = logging.getLogger("aixpy.embeddings")


falls_back = provider_failed
"""The default rule: whether an error moves the call on to the next provider (see the module docstring)."""


def _name(svc: EmbeddingService) -> str:
    return f"{svc.provider}:{svc.model()}"


class FallbackEmbeddings(EmbeddingWrapper):
    """Tries ``services`` in order; the first answer wins."""

    def __init__(self, services: Sequence[EmbeddingService], *,
                 fallback_on: Callable[[BaseException], bool] = falls_back,
                 clock: Clock | None = None, timeout: float | None = None) -> None:
        if not services:
            raise InvalidInputError("FallbackEmbeddings needs at least one service")
        known = [s.known_dimensions() for s in services]
        if len({d for d in known if d is not None}) > 1:
            raise self._mismatch(services, known)
        super().__init__(services[0], clock=clock, timeout=timeout)
        self.services = list(services)
        self._dims = next((d for d in known if d is not None), None)
        self.fallback_on = fallback_on
        self.served: Counter[str] = Counter()
        self._lock = threading.Lock()
        models = {s.model() for s in services}
        if len(models) > 1:
            logger.warning("fallback chain mixes models (%s): their vectors are not comparable",
                           ", ".join(_name(s) for s in services))

    @staticmethod
    def _mismatch(services: Sequence[EmbeddingService], dims: Sequence[int | None]) -> ConfigError:
        listing = ", ".join(f"{_name(s)}={'?' if d is None else d}" for s, d in zip(services, dims, strict=True))
        return ConfigError(f"fallback providers must all have the same dimensions; got {listing}",
                           path="embeddings.fallback")

    def known_dimensions(self) -> int | None:
        return self._dims

    def _served(self, index: int, reply: Result) -> None:
        """Count the answer; a provider whose dimensions were unknown until now must match the chain."""
        out = reply[0]
        if self._dims is None:
            self._dims = int(out.shape[1])
        elif out.shape[1] != self._dims:
            dims = [self._dims if i != index else int(out.shape[1]) for i in range(len(self.services))]
            raise self._mismatch(self.services, dims)
        with self._lock:
            self.served[_name(self.services[index])] += 1

    def _call_plan(self, run: Attempts) -> StepPlan[Result]:
        return fallback_plan(len(self.services), run, deadline=self._deadline(), fallback_on=self.fallback_on,
                             name=lambda i: (self.services[i].provider, self.services[i].model()), logger=logger,
                             served=self._served)

    def _run(self, texts: list[str]) -> Result:
        run = Attempts(texts)
        return call(self._call_plan(run), lambda i: self.services[i].embed_with_usage(run.batch()), self.clock)

    async def _arun(self, texts: list[str]) -> Result:
        run = Attempts(texts)
        return await acall(self._call_plan(run), lambda i: self.services[i].aembed_with_usage(run.batch()), self.clock)

    def close(self) -> None:
        for svc in self.services:
            svc.close()
        self._closed = True

    async def aclose(self) -> None:
        for svc in self.services:
            await svc.aclose()
        self._closed = True

    @property
    def normalize(self) -> bool | None:
        return normalize_flag(self.services[0])

    def __repr__(self) -> str:
        return f"FallbackEmbeddings({self.services!r})"
