"""Group commit mechanics: who writes, who waits, and how errors reach every writer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from events.store.group_commit import GroupCommit


def test_writers_arriving_during_a_write_go_together_in_the_next_one() -> None:
    first_write_started, release_first = threading.Event(), threading.Event()
    batches: list[list[int]] = []

    def write(items: Sequence[int]) -> list[int]:
        batches.append(list(items))
        if len(batches) == 1:
            first_write_started.set()
            release_first.wait(timeout=10)
        return [item * 10 for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    results: dict[int, int] = {}

    def submit(item: int) -> None:
        results[item] = group.submit(item)

    leader = threading.Thread(target=submit, args=(0,))
    leader.start()
    assert first_write_started.wait(timeout=10)
    followers = [threading.Thread(target=submit, args=(i,)) for i in range(1, 6)]
    for follower in followers:
        follower.start()
    deadline = time.monotonic() + 10
    while group.waiting < 5 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert group.waiting == 5
    release_first.set()
    for thread in [leader, *followers]:
        thread.join(timeout=10)

    assert batches[0] == [0] and sorted(batches[1]) == [1, 2, 3, 4, 5] and len(batches) == 2
    assert results == {i: i * 10 for i in range(6)}
    assert (group.batches, group.items) == (2, 6)


def test_an_item_failing_alone_raises_only_in_its_own_writer() -> None:
    def write(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError("odd") if item % 2 else item for item in items]

    group: GroupCommit[int, int] = GroupCommit(write)
    assert group.submit(2) == 2
    with pytest.raises(ValueError, match="odd"):
        group.submit(3)


def test_a_failed_write_reaches_every_writer_of_the_batch_and_the_next_one_proceeds() -> None:
    calls = 0

    def write(items: Sequence[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database gone")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(write)
    with pytest.raises(ConnectionError):
        group.submit(1)
    assert group.submit(7) == 7


def test_a_writer_answering_for_the_wrong_number_of_items_is_an_error() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda _items: [])
    with pytest.raises(RuntimeError, match="wrong number"):
        group.submit(1)
