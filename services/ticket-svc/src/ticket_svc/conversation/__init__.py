"""Messages on a ticket: customer and agent replies, internal notes, attachments."""
