"""The gateway's tables: domain tables live in their packages, the consumer inbox here."""

from sqlalchemy import Index

from helpdesk_common.consumer import inbox_table
from helpdesk_common.db import new_metadata

metadata = new_metadata()
inbox = inbox_table(metadata)
# the stream prunes its inbox by age (stream events older than the retention are dropped anyway)
Index("ix_inbox_processed_at", inbox.c.processed_at)
