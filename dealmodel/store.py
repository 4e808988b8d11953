"""A shared store of simulation results for a server: bounded in entries and in age.

The app keeps one for every session: a result is keyed by the deal (as JSON), the paths and the
seed, so people looking at the same structures share one result, and a structure edited in one
session never shows in another. The least recently used result goes first beyond
``max_entries``; a result not asked for in ``ttl`` seconds goes at the next request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from dealmodel.engine import simulate_many
from dealmodel.result import SimulationResult
from dealmodel.schema import Deal


class ResultStore:
    """Results by (deal, paths, seed); structures not yet valued are valued together
    (:func:`dealmodel.simulate_many`), so those sharing a program share one simulation of it."""

    def __init__(self, max_entries: int, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.ttl, self.clock = max_entries, ttl, clock
        self._items: OrderedDict[tuple[str, int, int], tuple[SimulationResult, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            key, (_, used) = next(iter(self._items.items()))
            if now - used <= self.ttl:
                break
            del self._items[key]

    def get_many(self, deal_jsons: list[str], paths: int, seed: int) -> list[SimulationResult]:
        now = self.clock()
        with self._lock:
            self._expire(now)
            found = {}
            for js in deal_jsons:
                key = (js, paths, seed)
                if key in self._items:
                    found[js] = self._items[key][0]
                    self._items[key] = (found[js], now)
                    self._items.move_to_end(key)
        missing = [js for js in dict.fromkeys(deal_jsons) if js not in found]
        if missing:
            # NPVs and the yearly flows of a fixed 20,000-path subsample: a 100k-path result stays small
            valued = simulate_many([Deal.model_validate_json(js) for js in missing], paths=paths, seed=seed,
                                   keep_flows=False)
            with self._lock:
                for js, result in zip(missing, valued, strict=True):
                    found[js] = result
                    self._items[(js, paths, seed)] = (result, now)
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
        return [found[js] for js in deal_jsons]
