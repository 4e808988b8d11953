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
        self._pending: dict[tuple[str, int, int], threading.Event] = {}  # being valued by another session
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def _expire(self, now: float) -> None:
        while self._items:
            key, (_, used) = next(iter(self._items.items()))
            if now - used <= self.ttl:
                break
            del self._items[key]

    def get_many(self, deal_jsons: list[str], paths: int, seed: int,
                 deals: list[Deal] | None = None) -> list[SimulationResult]:
        """The results of ``deal_jsons``: kept ones at once; one being valued for another session waited
        for (many people opening the app together value each structure once); the rest valued here.
        ``deals``: the same deals as objects, when the caller has them (saves parsing each JSON again)."""
        parsed = dict(zip(deal_jsons, deals, strict=True)) if deals is not None else {}

        def deal_of(js: str) -> Deal:
            return parsed[js] if js in parsed else Deal.model_validate_json(js)

        found: dict[str, SimulationResult] = {}
        for _ in range(3):  # a session that was waited on may fail: then this one values it
            now = self.clock()
            mine, theirs = [], []
            with self._lock:
                self._expire(now)
                for js in dict.fromkeys(deal_jsons):
                    key = (js, paths, seed)
                    if js in found:
                        continue
                    if key in self._items:
                        found[js] = self._items[key][0]
                        self._items[key] = (found[js], now)
                        self._items.move_to_end(key)
                    elif key in self._pending:
                        theirs.append(self._pending[key])
                    else:
                        self._pending[key] = threading.Event()
                        mine.append(js)
            if mine:
                self._value(mine, [deal_of(js) for js in mine], paths, seed, found, now)
            if not theirs:
                break
            for event in theirs:  # then look again: kept by now, unless that session failed
                event.wait()
        missing = [js for js in dict.fromkeys(deal_jsons) if js not in found]
        if missing:  # still not kept after waiting (the other session failed, or it was dropped at once)
            valued = simulate_many([deal_of(js) for js in missing], paths=paths, seed=seed, keep_flows=False)
            found.update(zip(missing, valued, strict=True))
        return [found[js] for js in deal_jsons]

    def _value(self, jsons: list[str], deals: list[Deal], paths: int, seed: int, found: dict, now: float) -> None:
        keys = [(js, paths, seed) for js in jsons]
        try:
            # NPVs and the yearly flows of a fixed 20,000-path subsample: a 100k-path result stays small
            valued = simulate_many(deals, paths=paths, seed=seed, keep_flows=False)
            with self._lock:
                for key, result in zip(keys, valued, strict=True):
                    found[key[0]] = result
                    self._items[key] = (result, now)
                while len(self._items) > self.max_entries:
                    self._items.popitem(last=False)
        finally:
            with self._lock:
                for key in keys:
                    self._pending.pop(key).set()
