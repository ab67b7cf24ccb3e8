"""Stack.start_replica: a second process of a service on its own port, kept in ``procs`` under its
own key and stopped by stop_all (processes stubbed: what is started, where, and in which order)."""

import pytest

from helpdesk_common import devstack
from helpdesk_common.devstack import Stack, StackConfig, replica_key, split_replica_key


class FakeProc:
    def __init__(self, cmd, log) -> None:
        self.cmd, self.returncode = cmd, None
        self.port = int(cmd[cmd.index("--port") + 1])
        self.log = log

    def poll(self):
        return self.returncode

    def terminate(self) -> None:
        self.log.append(("terminate", self.port))
        self.returncode = -15

    kill = terminate

    def wait(self, timeout=None):
        return self.returncode


@pytest.fixture
def stack(tmp_path, monkeypatch):
    log: list = []
    monkeypatch.setattr(devstack.subprocess, "Popen", lambda cmd, **kw: FakeProc(cmd, log))
    s = Stack(StackConfig(tmp_path, gateway_port=9100, service_base_port=9100,
                          database_url_base="postgresql+asyncpg://postgres@127.0.0.1:1", kafka_bootstrap="127.0.0.1:2"))
    s.calls = log
    return s


def test_replica_keys():
    assert replica_key("sla-svc") == "sla-svc" and replica_key("sla-svc", 2) == "sla-svc#2"
    assert split_replica_key("sla-svc#2") == ("sla-svc", 2) and split_replica_key("gateway") == ("gateway", 1)
    with pytest.raises(ValueError):
        replica_key("sla-svc", 0)


def test_a_second_replica_gets_its_own_port_and_key_and_stops_with_the_stack(stack):
    stack.start_service("customer-svc")
    stack.start_service("gateway")
    key = stack.start_replica("customer-svc", wait=None)
    assert key == "customer-svc#2" and set(stack.procs) == {"customer-svc", "gateway", "customer-svc#2"}
    first, second = stack.procs["customer-svc"], stack.procs[key]
    assert first.port == stack.port_of("customer-svc") == 9101  # unchanged
    assert second.port == stack.port_of(key) not in range(9100, 9107)
    assert stack.url_of(key) == f"http://127.0.0.1:{second.port}"
    assert (stack.logs_dir / "customer-svc.2.log").exists()
    # the same service (package, database, consumer groups), another process
    assert second.cmd[second.cmd.index("--factory") + 1] == first.cmd[first.cmd.index("--factory") + 1]

    stack.start_service("customer-svc", replica=2)  # a restart keeps the replica's port
    assert stack.procs[key].port == second.port

    with pytest.raises(ValueError):
        stack.start_replica("customer-svc", replica=1)

    stack.stop_all()
    # the gateway first (SERVICES' reverse order), then both customer-svc processes
    assert stack.calls[0] == ("terminate", 9100)
    assert {p for _, p in stack.calls[1:]} == {9101, stack.port_of(key)}
    assert stack.procs == {}


def test_a_scaled_stack_tells_each_gateway_every_replica(stack, monkeypatch):
    monkeypatch.setattr(Stack, "wait_service", lambda self, name, timeout=60: None)
    envs = []
    real_env = Stack.env
    monkeypatch.setattr(Stack, "env", lambda self: envs.append(real_env(self)) or envs[-1])
    stack.start_services(replicas=2)
    names = [s.name for s in devstack.SERVICES]
    assert set(stack.procs) == {*names, *(f"{n}#2" for n in names)}
    assert list(stack.procs)[-2:] == ["gateway", "gateway#2"]  # the gateways last
    gateway_env = envs[-1]
    for setting, service in (("GATEWAY_TICKET_URL", "ticket-svc"), ("GATEWAY_KB_URL", "kb-svc")):
        assert gateway_env[setting] == f"{stack.url_of(service)},{stack.url_of(service + '#2')}"
    # every process started with the same list (ports picked before the first start)
    assert len({e["GATEWAY_TICKET_URL"] for e in envs}) == 1
    assert len({p.port for p in stack.procs.values()}) == 2 * len(names)
