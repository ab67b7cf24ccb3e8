"""The environment devstack gives the services: each service URL another service calls."""

from helpdesk_common.devstack import Stack, StackConfig


def test_service_urls_follow_the_port_block(tmp_path):
    stack = Stack(StackConfig(tmp_path, gateway_port=9100, service_base_port=9100,
                              database_url_base="postgresql+asyncpg://postgres@127.0.0.1:1", kafka_bootstrap="127.0.0.1:2"))
    env = stack.env()
    assert env["TICKET_KB_URL"] == "http://127.0.0.1:9106"  # kb-svc: offset 6
    assert env["GATEWAY_KB_URL"] == env["TICKET_KB_URL"]
    assert env["ANALYTICS_TICKET_URL"] == env["NOTIFY_TICKET_URL"] == env["GATEWAY_TICKET_URL"] == "http://127.0.0.1:9102"
    assert env["SLA_TICKET_URL"] == env["KB_TICKET_URL"] == env["GATEWAY_TICKET_URL"]


def test_customer_pii_keys_are_generated_once_and_given_to_customer_svc_only(tmp_path):
    from helpdesk_common.pii_crypto import Keyring, parse_index_key

    config = StackConfig(tmp_path, gateway_port=9100, service_base_port=9100,
                         database_url_base="postgresql+asyncpg://postgres@127.0.0.1:1", kafka_bootstrap="127.0.0.1:2")
    stack = Stack(config)
    assert Keyring.from_settings(stack.secrets["customer_pii_keys"]).current_kid == "k1"
    assert len(parse_index_key(stack.secrets["customer_pii_index_key"])) == 32
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0
    # a second start keeps the keys (data encrypted under them stays readable)
    again = Stack(config)
    assert again.secrets["customer_pii_keys"] == stack.secrets["customer_pii_keys"]
    assert again.secrets["customer_pii_index_key"] == stack.secrets["customer_pii_index_key"]
    # the environment every service shares does not carry them (start_service adds them for customer-svc)
    env = stack.env()
    assert "CUSTOMER_PII_KEYS" not in env or env["CUSTOMER_PII_KEYS"] != stack.secrets["customer_pii_keys"]


def test_ticket_pii_keys_are_generated_once_and_kept_out_of_the_shared_environment(tmp_path):
    from helpdesk_common.pii_crypto import Keyring, parse_index_key

    config = StackConfig(tmp_path, gateway_port=9100, service_base_port=9100,
                         database_url_base="postgresql+asyncpg://postgres@127.0.0.1:1", kafka_bootstrap="127.0.0.1:2")
    stack = Stack(config)
    assert Keyring.from_settings(stack.secrets["ticket_pii_keys"]).current_kid == "k1"
    assert len(parse_index_key(stack.secrets["ticket_pii_index_key"])) == 32
    assert stack.secrets["ticket_pii_keys"] != stack.secrets["customer_pii_keys"]
    assert Stack(config).secrets["ticket_pii_keys"] == stack.secrets["ticket_pii_keys"]
    assert stack.env().get("TICKET_PII_KEYS") != stack.secrets["ticket_pii_keys"]
