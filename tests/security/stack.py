"""The stack the authorization matrix runs against: the real processes on the embedded
PostgreSQL and broker (helpdesk_common.devstack), with the request limits of the gateway raised
so that the matrix's thousands of deliberate 401s and 403s are answered as themselves rather than
as 429s (the limits have their own tests: tests/e2e/test_hardening.py)."""

from __future__ import annotations

from pathlib import Path

from helpdesk_common.devstack import PORT_BLOCK, Stack, StackConfig, free_block, free_port

#: the gateway's limits, off or far above what one matrix run sends
LIMITS_OFF = {
    "GATEWAY_RATE_LIMIT_RPS": "0",  # per user and per key (0: off, as for benchmarks)
    "GATEWAY_AUTH_FAILURES_PER_MINUTE_PER_ADDRESS": "1000000",
    "GATEWAY_LOGIN_FAILURES_PER_MINUTE_PER_ADDRESS": "1000000",
    "GATEWAY_SURVEY_ADDRESS_RATE_LIMIT_RPS": "100000", "GATEWAY_SURVEY_ADDRESS_RATE_LIMIT_BURST": "100000",
    "GATEWAY_CONFIRMATION_ADDRESS_RATE_LIMIT_RPS": "100000",
    "GATEWAY_CONFIRMATION_ADDRESS_RATE_LIMIT_BURST": "100000",
    "GATEWAY_KB_PUBLIC_ADDRESS_RATE_LIMIT_RPS": "100000", "GATEWAY_KB_PUBLIC_ADDRESS_RATE_LIMIT_BURST": "100000",
    # the password-hashing gate (one hash at a time) queues the matrix's throwaway users instead
    # of answering 503 busy
    "GATEWAY_PASSWORD_HASH_MAX_WAITING": "10000", "GATEWAY_PASSWORD_HASH_WAIT_S": "120",
    "KB_SUGGESTIONS_RATE_PER_SECOND": "100000", "KB_SUGGESTIONS_BURST": "100000",
}


def matrix_stack_config(data_dir: Path) -> StackConfig:
    base = free_block(PORT_BLOCK)
    return StackConfig(
        data_dir=data_dir, gateway_port=base, service_base_port=base, pg_port=free_port(),
        kafka_port=free_port(), ephemeral=True,
        # the matrix asks and reads back; it never waits on an event hop's latency: idle fetches
        # every 250 ms instead of 50 keep the broker from taking half a core (devstack.StackConfig)
        consumer_fetch_max_wait_ms=250,
        extra_env={
            **LIMITS_OFF,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{base}",
            # nothing leaves 127.0.0.0/8: no SMTP server is configured (e-mail deliveries stay
            # queued) and webhooks reach only an address where nothing listens
            "NOTIFY_EGRESS_ALLOWLIST_ONLY": "true", "NOTIFY_WEBHOOK_ALLOW_NETWORKS": "127.0.0.9/32",
            "SMTP_URL": f"smtp://127.0.0.1:{free_port()}?starttls=false",
            "NOTIFY_SUPPORT_ADDRESSES": "support@example.com",
        },
    )


def start_matrix_stack(data_dir: Path) -> Stack:
    stack = Stack(matrix_stack_config(data_dir))
    try:
        stack.creds = stack.up()
    except BaseException:
        stack.stop_all()
        raise
    return stack
