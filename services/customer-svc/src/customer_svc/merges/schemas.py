"""Pydantic shapes of the merge and split requests (the answers are ``CustomerRead``)."""

from __future__ import annotations

import uuid

from pydantic import Field

from helpdesk_common.validation import StrictModel

from ..customers.schemas import Name


class MergeIn(StrictModel):
    """``POST /v1/customers/{id}/merge``: ``{id}`` survives, ``source_id`` is merged into it."""

    source_id: uuid.UUID = Field(description="The customer merged away: its identities, tickets, orders, surveys "
                                             "and history move to the survivor; its id answers 410 afterwards.")


class SplitIn(StrictModel):
    """``POST /v1/customers/{id}/identities/{identity_id}/unmerge``: the identity moves to
    ``target_customer_id``, or to a new customer (named ``name``) when it is absent."""

    target_customer_id: uuid.UUID | None = None
    name: Name | None = Field(None, description="The new customer's name (without target_customer_id).")
