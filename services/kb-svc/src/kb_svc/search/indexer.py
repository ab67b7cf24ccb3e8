"""Keeping the search documents in step with the published content.

The content package calls :func:`index_translation` in the transaction that publishes,
unpublishes, archives or restores a translation, or changes a published article's visibility,
labels or place, so search never shows what customers may no longer see.
"""

from __future__ import annotations

import uuid
from typing import Any


async def index_translation(session: Any, *, article_id: uuid.UUID, locale: str) -> None:
    """Write or delete the search document of one translation from its published columns.

    Placeholder until the search package's index lands (issue 14, in progress): it writes
    nothing yet, so content can be built and tested against the final signature.
    """
    del session, article_id, locale
