"""The test session's embedded broker is started again when it has exited (helpdesk_common.testing)."""

import signal

from helpdesk_common.devstack import EmbeddedBroker, free_port, wait_tcp
from helpdesk_common.testing import Infra


def test_a_dead_session_broker_is_restarted_on_its_port_and_reported(tmp_path):
    broker = EmbeddedBroker(free_port(), tmp_path / "broker.log")
    infra = Infra(db_base="postgresql+asyncpg://unused", kafka_bootstrap="", pg=None, broker=broker)
    broker.start()
    try:
        assert infra.revive_broker() is None  # alive: left alone
        broker.proc.send_signal(signal.SIGKILL)
        broker.proc.wait(10)
        report = infra.revive_broker()
        assert report is not None and "code -9" in report and "tansu broker" in report
        assert broker.proc is not None and broker.proc.poll() is None
        wait_tcp("127.0.0.1", broker.port, 10)  # listening again on the same port
    finally:
        broker.stop()
