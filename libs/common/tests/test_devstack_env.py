"""The environment devstack gives the services: each service URL another service calls."""

from helpdesk_common.devstack import Stack, StackConfig


def test_service_urls_follow_the_port_block(tmp_path):
    stack = Stack(StackConfig(tmp_path, gateway_port=9100, service_base_port=9100,
                              database_url_base="postgresql+asyncpg://postgres@127.0.0.1:1", kafka_bootstrap="127.0.0.1:2"))
    env = stack.env()
    assert env["TICKET_KB_URL"] == "http://127.0.0.1:9106"  # kb-svc: offset 6
    assert env["GATEWAY_KB_URL"] == env["TICKET_KB_URL"]
    assert env["ANALYTICS_TICKET_URL"] == env["NOTIFY_TICKET_URL"] == env["GATEWAY_TICKET_URL"] == "http://127.0.0.1:9102"
