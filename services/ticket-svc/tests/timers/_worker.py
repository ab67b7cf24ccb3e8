"""A scheduler process for the restart test: fires ``test_slow_write`` timers (each a small write
and a short pause, so a kill lands mid-batch) until it is killed. Not collected by pytest."""

import asyncio
import sys

from helpdesk_common.db import create_raw_pool
from ticket_svc.timers import scheduler, service


async def slow_write(conn, timer) -> None:  # type: ignore[no-untyped-def]
    await conn.execute("INSERT INTO timer_fires (timer_id, ticket_id, ref) VALUES ($1, $2, $3)",
                       timer.id, timer.ticket_id, timer.ref)
    await asyncio.sleep(0.002)


async def main(url: str) -> None:
    service.register("test_slow_write", slow_write)
    pool = await create_raw_pool(url, size=2)
    sched = scheduler.TimerScheduler(pool, scheduler.asyncpg_dsn(url), batch_size=50)
    print("ready", flush=True)
    await sched.run()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
