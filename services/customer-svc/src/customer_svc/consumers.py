"""customer-svc's one consumer group over the topics it reads: every package that follows other
services' events (requester resolution, the ticket projection, surveys, insight scoring) adds its
handler map here, and the maps are composed, so each event is fetched, parsed and recorded in the
inbox once and every package's effect commits in the same transaction."""

from __future__ import annotations

from helpdesk_common.app import ConsumerSpec
from helpdesk_common.consumer import compose_handlers
from helpdesk_common.events import PRIVACY_TOPIC, SLA_TOPIC, TICKETS_TOPIC

from .customers.handlers import HANDLERS as requester_handlers
from .privacy.handlers import HANDLERS as privacy_handlers
from .surveys.handlers import HANDLERS as survey_handlers
from .ticket_facts.handlers import HANDLERS as ticket_fact_handlers

#: the consumer group's name stays what it was when it resolved requesters alone: a renamed
#: group would start from the committed offsets of nobody
GROUP = "customer-svc.requesters"
TOPICS = [TICKETS_TOPIC, SLA_TOPIC, PRIVACY_TOPIC]


def consumer_spec() -> ConsumerSpec:
    # ticket.created: requester resolution's handler projects the ticket too (with its customer)
    return ConsumerSpec(name=GROUP, topics=list(TOPICS), handlers=compose_handlers(ticket_fact_handlers, requester_handlers,
                                                                                        survey_handlers, privacy_handlers),
                        raw=True)
