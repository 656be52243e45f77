"""Does a store keep the promises Weir relies on? (`influxdb3 debug object-store-check`)

Many S3 look-alikes accept the conditional-write headers and ignore them: every writer of a
race "wins", and two nodes would overwrite each other's catalog. These checks make the
races happen (several writers released at once against one key) and count the winners; they
also check that a written object reads back, lists, and is gone once deleted. Everything
they write is under one fresh prefix, removed at the end.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from weir.errors import ObjectStoreUnavailable
from weir.objectstore.base import ObjectStore

#: the folder the checks write under (a fresh sub-folder each run)
CHECK_PREFIX = "weir-object-store-check/"


@dataclass(frozen=True)
class CheckResult:
    check: str
    ok: bool
    detail: str


class _Failed(Exception):
    """A check's expectation not met (the message says what happened instead)."""


def _race(writers: int, attempt: Callable[[int], bool]) -> list[int]:
    """Run `attempt(i)` for every writer at once (released together by a barrier); the
    writers that got True."""
    barrier = threading.Barrier(writers)
    won: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            ok = attempt(i)
        except BaseException as e:  # noqa: BLE001 - handed to the checking thread below
            with lock:
                errors.append(e)
            return
        if ok:
            with lock:
                won.append(i)

    threads = [threading.Thread(target=run, args=(i,), name=f"check-writer-{i}")
               for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sorted(won)


def _expect(cond: bool, message: str) -> None:
    if not cond:
        raise _Failed(message)


def check_store(store: ObjectStore, writers: int = 8, rounds: int = 3) -> list[CheckResult]:
    """Run every check on `store`; a store that cannot be reached fails the first check
    with the reason and the others as not run."""
    base = f"{CHECK_PREFIX}{uuid.uuid4().hex}/"

    def payload(tag: str) -> bytes:
        return f"weir object-store check {tag}".encode()

    def read_after_write() -> str:
        key = base + "read-after-write"
        for n in range(3):
            data = payload(f"version {n}")
            store.put(key, data)
            got = store.get(key)
            _expect(got == data, f"put version {n}, read back {got[:40]!r}")
            _expect(store.size(key) == len(data), "size differs from what was written")
        return "3 puts of one key, each read back at once"

    def list_after_write() -> str:
        keys = [f"{base}list/{name}" for name in ("b", "a", "c/d")]
        for k in keys:
            store.put(k, payload(k))
        got = store.list(base + "list/")
        _expect(got == sorted(keys), f"listed {got}, wrote {sorted(keys)}")
        _expect(store.list(base + "list/c/") == [keys[2]], "a sub-folder's listing differs")
        return f"{len(keys)} keys listed at once, sorted, by prefix"

    def put_if_absent() -> str:
        for r in range(rounds):
            key = f"{base}create-{r}"

            def create(i: int, key: str = key) -> bool:
                return store.put_if_absent(key, payload(str(i)))

            won = _race(writers, create)
            _expect(len(won) == 1, f"round {r + 1}: {len(won)} of {writers} writers created "
                                   "the same object (the store ignores If-None-Match)"
                    if won else f"round {r + 1}: no writer created the object")
            got = store.get(key)
            _expect(got == payload(str(won[0])),
                    f"round {r + 1}: the object holds another writer's data than the winner's")
        return f"{_rounds(rounds)} of {writers} writers: exactly one won each"

    def conditional_overwrite() -> str:
        key = base + "compare-and-swap"
        store.put(key, payload("start"))
        for r in range(rounds):
            tag = store.etag(key)

            def swap(i: int, tag: str = tag, r: int = r) -> bool:
                return store.put_if_match(key, payload(f"{r}-{i}"), tag)

            won = _race(writers, swap)
            _expect(len(won) == 1, f"round {r + 1}: {len(won)} of {writers} writers replaced "
                                   "the same version (the store ignores If-Match)"
                    if won else f"round {r + 1}: no writer replaced the object")
            got = store.get(key)
            _expect(got == payload(f"{r}-{won[0]}"),
                    f"round {r + 1}: the object holds another writer's data than the winner's")
            _expect(not store.put_if_match(key, payload("stale"), tag),
                    f"round {r + 1}: a write with the replaced version's ETag succeeded")
        return f"{_rounds(rounds)} of {writers} writers on one ETag: exactly one won each"

    def delete() -> str:
        key = base + "delete"
        store.put(key, payload("delete"))
        store.delete(key)
        try:
            store.get(key)
        except FileNotFoundError:
            pass
        else:
            raise _Failed("the object still reads back after delete")
        _expect(key not in store.list(base), "the object is still listed after delete")
        store.delete(key)  # deleting what is gone is no error
        return "gone at once (get, list); a second delete is no error"

    checks: list[tuple[str, Callable[[], str]]] = [
        ("read after write", read_after_write),
        ("list after write", list_after_write),
        (f"put if absent ({writers} writers)", put_if_absent),
        (f"conditional overwrite ({writers} writers)", conditional_overwrite),
        ("delete", delete),
    ]
    results: list[CheckResult] = []
    unreachable: str | None = None
    for name, run in checks:
        if unreachable is not None:
            results.append(CheckResult(name, False, "not run: " + unreachable))
            continue
        try:
            results.append(CheckResult(name, True, run()))
        except _Failed as e:
            results.append(CheckResult(name, False, str(e)))
        except ObjectStoreUnavailable as e:
            unreachable = "the store is unavailable"
            results.append(CheckResult(name, False, str(e)))
        except Exception as e:  # noqa: BLE001 - any failure is this check's result
            results.append(CheckResult(name, False, f"{type(e).__name__}: {e}"))
    if unreachable is None:
        _clean_up(store, base)
    return results


def _rounds(n: int) -> str:
    return "1 round" if n == 1 else f"{n} rounds"


def _clean_up(store: ObjectStore, base: str) -> None:
    try:
        for key in store.list(base):
            store.delete(key)
    except (OSError, ObjectStoreUnavailable):  # leftovers under CHECK_PREFIX harm nothing
        pass
