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

from aixpy.embeddings.base import EmbeddingService, Matrix
from aixpy.embeddings.policies._attempts import Attempts
from aixpy.embeddings.policies._wrapper import EmbeddingWrapper, Result, normalize_flag
from aixpy.errors import (
    AllProvidersFailedError,
    ConfigError,
    InvalidInputError,
    InvalidRequestError,
    PartialBatchError,
    ProviderError,
)
from aixpy.llm.deadline import Clock, Deadline, DeadlineExceededError

__all__ = ["FallbackEmbeddings", "falls_back"]

logger = logging.getLogger("aixpy.embeddings")


def falls_back(err: BaseException) -> bool:
    """The default rule: whether ``err`` moves the call on to the next provider (see the module docstring)."""
    if isinstance(err, InvalidRequestError):
        return err.status_code in (404, 413)
    return isinstance(err, ProviderError)


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

    def _served(self, index: int, out: Matrix) -> None:
        """Count the answer; a provider whose dimensions were unknown until now must match the chain."""
        if self._dims is None:
            self._dims = int(out.shape[1])
        elif out.shape[1] != self._dims:
            dims = [self._dims if i != index else int(out.shape[1]) for i in range(len(self.services))]
            raise self._mismatch(self.services, dims)
        with self._lock:
            self.served[_name(self.services[index])] += 1

    def _expired(self, index: int, deadline: Deadline, errors: list[BaseException]) -> bool:
        if index == 0 or not deadline.expired:
            return False
        svc = self.services[index]
        errors.append(DeadlineExceededError(f"the call's deadline passed before {_name(svc)} was tried",
                                            provider=svc.provider, model=svc.model()))
        return True

    def _failed(self, err: Exception, index: int, run: Attempts, errors: list[BaseException]) -> None:
        if isinstance(err, PartialBatchError):
            run.partial(err)
        elif not self.fallback_on(err):
            raise err
        errors.append(err)
        if index + 1 < len(self.services):
            logger.info("%s failed (%s); falling back to %s for %d text(s)", _name(self.services[index]),
                        type(err).__name__, _name(self.services[index + 1]), len(run.pending))

    def _all_failed(self, run: Attempts, errors: list[BaseException]) -> ProviderError:
        return run.failure(AllProvidersFailedError(errors))

    def _run(self, texts: list[str]) -> Result:
        run, deadline = Attempts(texts), self._deadline()
        errors: list[BaseException] = []
        for i, svc in enumerate(self.services):
            if self._expired(i, deadline, errors):
                break
            try:
                matrix, usage = svc.embed_with_usage(run.batch())
            except Exception as e:
                self._failed(e, i, run, errors)
                continue
            self._served(i, matrix)
            return run.done(matrix, usage), run.usage
        raise self._all_failed(run, errors) from errors[-1]

    async def _arun(self, texts: list[str]) -> Result:
        run, deadline = Attempts(texts), self._deadline()
        errors: list[BaseException] = []
        for i, svc in enumerate(self.services):
            if self._expired(i, deadline, errors):
                break
            try:
                matrix, usage = await svc.aembed_with_usage(run.batch())
            except Exception as e:
                self._failed(e, i, run, errors)
                continue
            self._served(i, matrix)
            return run.done(matrix, usage), run.usage
        raise self._all_failed(run, errors) from errors[-1]

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
