"""The compactor lease: exactly one holder however many nodes race, renewal by the holder,
takeover once expired (a fake clock passed as now_ns), and a holder that stops counting
itself as one before anybody else may take over."""

from __future__ import annotations

import threading
import time

from weir.cluster import CompactorLease, lease_key
from weir.objectstore import ObjectStore

S = 1_000_000_000  # ns per second


def race(leases: list[CompactorLease], now_ns: int | None = None) -> list[str]:
    """Every lease's acquire_or_renew at once (threads released by a barrier): the winners."""
    barrier = threading.Barrier(len(leases))
    won: list[str] = []
    lock = threading.Lock()

    def take(lease: CompactorLease) -> None:
        barrier.wait(timeout=10)
        if lease.acquire_or_renew(now_ns):
            with lock:
                won.append(lease.node_id)

    threads = [threading.Thread(target=take, args=(lease,)) for lease in leases]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won


def nodes(store: ObjectStore, n: int = 8, ttl_s: float = 30.0) -> list[CompactorLease]:
    return [CompactorLease(store, "c1", f"node-{i}", ttl_s=ttl_s) for i in range(n)]


def test_eight_racing_for_a_new_lease_one_wins(store: ObjectStore) -> None:
    leases = nodes(store)
    [winner] = race(leases)
    assert leases[0].holder() == winner
    assert [lease.node_id for lease in leases if lease.held()] == [winner]


def test_eight_racing_for_an_expired_lease_one_wins(store: ObjectStore) -> None:
    t0 = time.time_ns()
    leases = nodes(store)
    assert leases[0].acquire_or_renew(t0)
    later = t0 + 31 * S  # past node-0's expiry, and node-0 races too
    [winner] = race(leases, later)
    assert leases[0].holder(later) == winner
    assert [lease.node_id for lease in leases if lease.held(later)] == [winner]


def test_holder_renews_others_wait_until_expiry(store: ObjectStore) -> None:
    t0 = time.time_ns()
    a, b = nodes(store, 2)
    assert a.acquire_or_renew(t0)
    assert not b.acquire_or_renew(t0 + 1 * S)
    assert a.acquire_or_renew(t0 + 20 * S)  # renewed: expires at t0 + 50 s now
    assert not b.acquire_or_renew(t0 + 40 * S)
    assert a.holder(t0 + 40 * S) == "node-0"
    # a stops renewing (dead, or cut off from the store): b takes over after the expiry
    assert not b.acquire_or_renew(t0 + 49 * S)
    assert b.acquire_or_renew(t0 + 51 * S)
    assert b.holder(t0 + 51 * S) == "node-1" and b.held(t0 + 51 * S)
    # a's renewal now fails and it no longer counts itself as holder
    assert not a.acquire_or_renew(t0 + 52 * S)
    assert not a.held(t0 + 52 * S)


def test_held_ends_a_third_of_the_ttl_before_expiry(store: ObjectStore) -> None:
    t0 = time.time_ns()
    a, b = nodes(store, 2)
    assert a.acquire_or_renew(t0)
    assert a.held(t0 + 19 * S)
    assert not a.held(t0 + 21 * S)  # past 30 s - 10 s: a has stopped compacting...
    assert not b.acquire_or_renew(t0 + 25 * S)  # ...before b may take over (at 30 s)
    assert b.acquire_or_renew(t0 + 30 * S + 1)


def test_release_frees_it_at_once(store: ObjectStore) -> None:
    t0 = time.time_ns()
    a, b = nodes(store, 2)
    assert a.acquire_or_renew(t0)
    a.release(t0 + 1 * S)
    assert not a.held(t0 + 1 * S)
    assert a.holder(t0 + 2 * S) is None
    assert b.acquire_or_renew(t0 + 2 * S)
    a.release(t0 + 3 * S)  # not a's any more: leaves b's lease alone
    assert b.holder(t0 + 3 * S) == "node-1"


def test_a_restarted_holder_renews_its_own_lease(store: ObjectStore) -> None:
    t0 = time.time_ns()
    assert CompactorLease(store, "c1", "node-0").acquire_or_renew(t0)
    again = CompactorLease(store, "c1", "node-0")  # the same node id, a new process
    assert again.acquire_or_renew(t0 + 5 * S)
    assert not CompactorLease(store, "c1", "node-1").acquire_or_renew(t0 + 31 * S)


def test_an_unreadable_lease_is_taken_over(store: ObjectStore) -> None:
    store.put(lease_key("c1"), b"not json")
    assert CompactorLease(store, "c1", "node-0").acquire_or_renew()


def test_race_on_s3(s3_store: ObjectStore) -> None:
    leases = nodes(s3_store, 4)
    [winner] = race(leases)
    assert leases[1].holder() == winner
    later = time.time_ns() + 31 * S
    [taker] = race(leases, later)
    assert leases[2].holder(later) == taker
