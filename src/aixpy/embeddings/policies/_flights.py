"""Single flight for the embedding cache: :class:`aixpy.policy.flights.Flights` over vectors (moved
there, shared with the LLM response cache)."""

from __future__ import annotations

from concurrent.futures import Future

import numpy as np
import numpy.typing as npt

from aixpy.policy.flights import Flights as _Flights

__all__ = ["Flight", "Flights"]

Vector = npt.NDArray[np.float32]
Flight = Future[Vector | None]
Flights = _Flights[Vector]
