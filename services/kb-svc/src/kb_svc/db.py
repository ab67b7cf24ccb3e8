"""The service's tables: domain tables live in their packages, bus tables here."""

from helpdesk_common.consumer import inbox_table
from helpdesk_common.db import new_metadata
from helpdesk_common.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
