"""helpdesk_common.periodic: the loop every background pass of the services runs on."""

import asyncio

from helpdesk_common.periodic import periodic


async def test_a_step_runs_every_interval_survives_failures_and_stops_with_the_app(caplog):
    calls: list[object] = []

    async def step(app):
        calls.append(app)
        if len(calls) == 2:
            raise RuntimeError("database hiccup")

    app = object()
    async with periodic("test pass", 0.01, step)(app):
        for _ in range(200):
            if len(calls) >= 4:
                break
            await asyncio.sleep(0.01)
    assert len(calls) >= 4 and all(c is app for c in calls)
    assert "test pass failed" in caplog.text
    stopped = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped  # the task ended with the app


async def test_no_interval_runs_nothing():
    calls = []

    async def step(app):
        calls.append(app)

    async with periodic("off", 0, step)(object()):
        await asyncio.sleep(0.05)
    assert calls == []
