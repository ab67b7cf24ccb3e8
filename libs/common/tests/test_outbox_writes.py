"""``outbox.watching_writes``: a unit of work learns whether it wrote outbox rows, so the relay
is woken after its commit only then (pure: no database)."""

import asyncio

from helpdesk_common import outbox


def test_a_unit_sees_its_own_writes_only():
    with outbox.watching_writes() as first:
        pass
    assert first.wrote is False
    with outbox.watching_writes() as second:
        outbox.note_write()
    assert second.wrote is True
    outbox.note_write()  # outside any unit: nothing to record, no error
    with outbox.watching_writes() as third:
        pass
    assert third.wrote is False


def test_a_nested_unit_shares_the_outer_record():
    with outbox.watching_writes() as outer:
        with outbox.watching_writes() as inner:
            assert inner is outer
            outbox.note_write()
        assert outer.wrote is True  # the outer commit wakes the relay
    with outbox.watching_writes() as after:
        assert after is not outer


async def test_a_write_in_a_task_started_inside_the_unit_counts():
    async def writer() -> None:
        outbox.note_write()

    with outbox.watching_writes() as writes:
        await asyncio.gather(asyncio.create_task(writer()))
    assert writes.wrote is True


async def test_units_in_concurrent_tasks_are_separate():
    async def unit(write: bool) -> bool:
        with outbox.watching_writes() as writes:
            await asyncio.sleep(0.01)
            if write:
                outbox.note_write()
            await asyncio.sleep(0.01)
        return writes.wrote

    assert await asyncio.gather(unit(True), unit(False), unit(True)) == [True, False, True]
