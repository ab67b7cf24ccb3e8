"""The client's address: helpdesk_common.clientaddr (the same rule decides who may read /metrics)."""

from helpdesk_common.clientaddr import Network, client_address, in_networks, parse_networks

__all__ = ["Network", "client_address", "in_networks", "parse_networks"]
