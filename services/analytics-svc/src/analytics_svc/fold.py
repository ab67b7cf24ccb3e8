"""The start and end of every fold transaction, the live consumer's and the rebuild's: what the
handlers collect instead of writing at once (``kpis.batch``: ``ticket_facts``;
``readmodel.handlers``: the history's facts, SLA targets, customer dimensions) is written at the
end, before the commit, and the tickets with a new fact are re-folded once."""

from __future__ import annotations

from typing import Any

from .kpis import batch as kpis_batch
from .readmodel.handlers import begin_batch, discard_batch, end_batch


async def begin(conn: Any) -> None:
    kpis_batch.begin(conn)
    await begin_batch(conn)


async def end(conn: Any) -> None:
    await kpis_batch.end(conn)
    await end_batch(conn)


def close(conn: Any, committed: bool = False) -> None:
    """After the transaction, whatever its outcome (``committed``, the consumer's
    ``after_transaction`` argument, makes no difference): nothing stays collected for ``conn``
    (a failed one left its collections behind; a later connection may reuse the object's id)."""
    kpis_batch.discard(conn)
    discard_batch(conn)
