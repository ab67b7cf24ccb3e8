"""The gateway's tables: domain tables live in their packages, the bus tables here (the outbox
carries the users' events, the inbox is the live stream consumer's)."""

from sqlalchemy import Index

from helpdesk_common.consumer import inbox_table
from helpdesk_common.db import new_metadata
from helpdesk_common.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
# the stream prunes its inbox by age (stream events older than the retention are dropped anyway)
Index("ix_inbox_processed_at", inbox.c.processed_at)
