"""The server's shared result store: shared by equal inputs, bounded in entries and in age."""

from __future__ import annotations

import dealmodel as dm
from dealmodel.store import ResultStore
from tests.conftest import REFERENCE


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _jsons() -> list[str]:
    return [dm.load_deal(REFERENCE[k]).model_dump_json(by_alias=True) for k in ("hybrid", "milestone", "revenue_share")]


def test_equal_inputs_share_one_result_and_the_oldest_goes_beyond_the_cap():
    a, b, c = _jsons()
    store = ResultStore(max_entries=2, ttl=100.0, clock=Clock())
    first = store.get_many([a], 2_000, 1)[0]
    assert store.get_many([a], 2_000, 1)[0] is first  # a second session asking the same gets the same object
    assert store.get_many([a], 2_000, 2)[0] is not first  # another seed is another result
    store.get_many([b], 2_000, 1)
    assert len(store) == 2  # three results for two places: the least recently used, a at seed 1, went
    assert store.get_many([a], 2_000, 1)[0] is not first
    assert store.get_many([b, c], 2_000, 1)[0].npv["partner"].size == 2_000
    assert len(store) == 2


def test_a_result_not_asked_for_within_its_time_to_live_is_dropped():
    a, b, _ = _jsons()
    clock = Clock()
    store = ResultStore(max_entries=10, ttl=100.0, clock=clock)
    first = store.get_many([a], 2_000, 1)[0]
    clock.now = 60.0
    assert store.get_many([a], 2_000, 1)[0] is first  # asked again: its clock restarts
    store.get_many([b], 2_000, 1)
    clock.now = 150.0
    assert store.get_many([a], 2_000, 1)[0] is first  # 90 s since last asked: kept
    clock.now = 300.0
    assert store.get_many([b], 2_000, 1) and len(store) == 1  # a (and the old b) expired; b valued again
    assert store.get_many([a], 2_000, 1)[0] is not first


def test_sessions_asking_at_once_for_the_same_result_value_it_once(monkeypatch):
    import threading
    import time

    import dealmodel.store as store_module

    a, b, _ = _jsons()
    calls = []
    real = store_module.simulate_many
    gate = threading.Event()

    def counted(deals, **kwargs):
        calls.append([d.name for d in deals])
        gate.wait(5)  # hold the first valuation until every session has asked
        return real(deals, **kwargs)

    monkeypatch.setattr(store_module, "simulate_many", counted)
    store = ResultStore(max_entries=10)
    out = [None] * 6
    threads = [threading.Thread(target=lambda i=i: out.__setitem__(i, store.get_many([a, b], 2_000, 1)))
               for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # every session has asked while the first valuation is held
    gate.set()
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and sorted(calls[0]) == sorted(dm.Deal.model_validate_json(js).name for js in (a, b))
    assert all(o[0] is out[0][0] and o[1] is out[0][1] for o in out)


def test_deals_given_as_objects_are_valued_as_their_json_would_be():
    jsons = _jsons()
    deals = [dm.Deal.model_validate_json(js) for js in jsons]
    given = ResultStore(max_entries=10, ttl=100.0, clock=Clock()).get_many(jsons, 2_000, 3, deals)
    parsed = ResultStore(max_entries=10, ttl=100.0, clock=Clock()).get_many(jsons, 2_000, 3)
    for a, b in zip(given, parsed, strict=True):
        assert a.deal is not None and a.deal.name == b.deal.name
        assert (a.npv["partner"] == b.npv["partner"]).all() and (a.npv["sponsor"] == b.npv["sponsor"]).all()
    assert all(r.deal is d for r, d in zip(given, deals, strict=True))  # the objects handed in, not parsed again
