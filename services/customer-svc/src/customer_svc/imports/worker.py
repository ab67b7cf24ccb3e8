"""Runs import jobs in the service process, one at a time per replica.

A job's rows are read in a worker thread (openpyxl and the CSV decoder are CPU work that must
not stall the event loop) and written in batches, each batch one transaction that also records
its errors and the progress: what ``GET /v1/imports/{id}`` shows is always committed work.
A replica renews the job's lease with every batch; a job whose replica stopped (a restart, a
crash) is taken over when its lease runs out and resumed after its last committed batch, which
the idempotent rows make safe even when a batch was half done.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import FastAPI

from helpdesk_common.identity import Principal

from . import files, repository, rows

log = logging.getLogger(__name__)


def take(iterator: Iterator[list[str | None]], size: int) -> list[list[str | None]]:
    return list(itertools.islice(iterator, size))


def count_data_rows(content: bytes, fmt: str) -> int:
    """Non-blank rows after the header (a first pass: the total is known before progress starts)."""
    found = files.rows(content, fmt)
    next(found, None)
    return sum(1 for cells in found if any(cells))


def values_of(cells: list[str | None], columns: dict[int, str]) -> dict[str, str]:
    return {field: cells[i] for i, field in columns.items() if i < len(cells) and cells[i] is not None}  # type: ignore[misc]


class ImportWorker:
    def __init__(self, *, pool: Any, notify: Any, batch_rows: int, lease_s: float, poll_s: float) -> None:
        self.pool = pool
        self.notify = notify
        self.batch_rows = batch_rows
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.wake = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                ran = await self.run_one()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database away: try again on the next tick
                log.exception("import worker tick failed")
                ran = False
            if not ran:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=self.poll_s)
                self.wake.clear()

    async def run_one(self) -> bool:
        async with self.pool.acquire() as conn:
            job = await repository.claim_next(conn, lease_s=self.lease_s)
        if job is None:
            return False
        log.info("import started", extra={"import_id": str(job["id"]), "kind": job["kind"]})
        try:
            await self.run_job(job)
        except files.FileError as exc:
            await self._finish(job["id"], "failed", str(exc))
        except asyncio.CancelledError:
            raise  # shutting down: the lease runs out and a replica resumes the job
        except (asyncpg.InterfaceError, asyncpg.exceptions.ConnectionDoesNotExistError, OSError):
            # the database went away (or the pool closes at shutdown): not the job's fault, so it
            # stays running and is resumed after its last batch once its lease runs out
            log.warning("import interrupted", extra={"import_id": str(job["id"])}, exc_info=True)
        except Exception as exc:
            log.exception("import failed", extra={"import_id": str(job["id"])})
            await self._finish(job["id"], "failed", f"internal error ({type(exc).__name__}); the rows before "
                                                    f"row {job['rows_done'] + 2} were imported")
        return True

    async def _finish(self, import_id: Any, status: str, failure: str | None = None) -> None:
        failure = files.clean_text(failure, 2000) if failure is not None else None
        async with self.pool.acquire() as conn:
            await repository.finish(conn, import_id, status=status, failure=failure)

    async def run_job(self, job: Any) -> None:
        content, fmt = job["content"], job["format"]
        if content is None:
            raise files.FileError("the uploaded file is gone")
        total = await asyncio.to_thread(count_data_rows, content, fmt)
        source = files.rows(content, fmt)
        header = await asyncio.to_thread(next, source, None)
        if header is None:
            raise files.FileError("the file is empty")
        columns = files.map_columns(job["kind"], header, job["mapping"])
        ctx = rows.Context(kind=job["kind"], source=job["source"], zone=ZoneInfo(job["time_zone"]),
                           principal=Principal(kind="user", id=job["created_by"].split(":", 1)[-1],
                                               role=job["created_by_role"]),
                           columns={field: files.clean_text(header[i] or "", 200) or field
                                    for i, field in columns.items()})
        done, ok, failed = job["rows_done"], job["rows_ok"], job["rows_failed"]
        async with self.pool.acquire() as conn:
            await repository.progress(conn, job["id"], done=done, ok=ok, failed=failed, total=total,
                                      lease_s=self.lease_s)
        position = 0  # data rows read so far (the header is file row 1)
        while True:
            batch = await asyncio.to_thread(take, source, self.batch_rows)
            if not batch:
                break
            work = []
            for cells in batch:
                position += 1
                if position > done and any(cells):
                    work.append((position + 1, values_of(cells, columns)))
            if position <= done:
                continue  # resuming: these rows were committed before
            errors: list[tuple[int, str, str]] = []
            async with self.pool.acquire() as conn, conn.transaction():
                for row_number, values in work:
                    try:
                        async with conn.transaction():  # a savepoint: a refused row leaves nothing
                            await rows.apply(conn, ctx, values)
                        ok += 1
                    except rows.RowInvalid as exc:
                        failed += 1
                        errors += [(row_number, ctx.columns.get(field, field), files.clean_text(message, 1000))
                                   for field, message in exc.errors]
                    except asyncpg.PostgresError as exc:
                        failed += 1
                        errors.append((row_number, "", f"could not be written ({type(exc).__name__})"))
                done = position
                await repository.add_errors(conn, job["id"], errors)
                await repository.progress(conn, job["id"], done=done, ok=ok, failed=failed, total=None,
                                          lease_s=self.lease_s)
            self.notify()
        await self._finish(job["id"], "completed")
        log.info("import completed", extra={"import_id": str(job["id"]), "ok": ok, "failed": failed})


def import_worker_hook(settings: Any):  # type: ignore[no-untyped-def]
    """Lifespan hook: one worker task per replica (off with ``CUSTOMER_IMPORTS_ENABLED=false``)."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        runtime = app.state.runtime
        worker = ImportWorker(pool=runtime.raw_pool, notify=runtime.notify_relay, batch_rows=settings.import_batch_rows,
                              lease_s=settings.import_lease_s, poll_s=settings.import_poll_interval_s)
        app.state.import_worker = worker
        task = asyncio.create_task(worker.run(), name="import-worker") if settings.imports_enabled else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return hook
