"""A real Apache Kafka cluster (KRaft) for the tests and ``make kafka``, built from Maven Central.

The embedded broker (tansu) is what ``make run`` uses; teams that outgrow one machine run
Apache Kafka, and what holds there (replication, fencing a dead broker, idempotent producers)
can only be shown on it. This module resolves the broker's jars once with ``mvn`` (the pom is
tools/kafka/pom.xml; the jars go to a cache outside the repository and are reused), formats
each node's storage with ``kafka.tools.StorageTool`` and runs 1 or 3 combined
broker+controller nodes with a static ``controller.quorum.voters`` on 127.0.0.1.

Every node is a child of this process in its own session that dies with it (PR_SET_PDEATHSIG)
and is stopped at interpreter exit, so no JVM outlives a test session. Nodes can be SIGKILLed
and restarted one at a time (the smoke test in tests/kafka and the fault suite do).

``python -m helpdesk_common.apache_kafka`` starts a cluster in the foreground (``make kafka``).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .devstack import _die_with_parent, free_block, free_port, wait_tcp

KAFKA_VERSION = "4.4.0"
#: the pom listing the broker's jars (kafka_2.13, kafka-tools without Kafka Connect, slf4j 2 + log4j 2)
POM = Path(__file__).resolve().parents[4] / "tools" / "kafka" / "pom.xml"
#: 256 MB of heap per node; trimming the C heap every 5 s keeps a node near 250-330 MB RSS
#: (without it one node grew to 650 MB on a 2-core machine)
JVM_OPTS = ("-Xms256m", "-Xmx256m", "-XX:TrimNativeHeapInterval=5000", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true")

LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = {level}
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = {level}
logger.controller.name = org.apache.kafka.controller
logger.controller.level = {level}
logger.state.name = state.change.logger
logger.state.level = warn
"""


def cache_dir() -> Path:
    """Where the jars live: ``HELPDESK_KAFKA_HOME`` or ~/.cache/helpdesk/kafka-<version>."""
    explicit = os.environ.get("HELPDESK_KAFKA_HOME")
    if explicit:
        return Path(explicit)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "helpdesk" / f"kafka-{KAFKA_VERSION}"


def resolve_jars(*, quiet: bool = True) -> Path:
    """The directory of the broker's jars, copied there by ``mvn`` the first time.

    A complete copy is marked by a ``.complete`` file; a lock file keeps two test sessions from
    resolving into the same directory at once, and the jars are copied to a staging directory
    renamed into place, so a killed resolve never leaves a half-filled ``lib``.
    """
    home = cache_dir()
    lib = home / "lib"
    if (lib / ".complete").exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (lib / ".complete").exists():
            return lib
        mvn = shutil.which("mvn")
        if mvn is None or shutil.which("java") is None:
            raise RuntimeError("Apache Kafka needs java and mvn: apt-get install -y openjdk-17-jre-headless maven")
        staging = Path(tempfile.mkdtemp(prefix="lib.", dir=home))
        cmd = [mvn, "-B", "-f", str(POM), "dependency:copy-dependencies",
               f"-DoutputDirectory={staging}", "-DincludeScope=runtime"]
        if quiet:
            cmd.insert(2, "-q")
        result = subprocess.run(cmd, capture_output=quiet, text=True)
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"mvn could not resolve Apache Kafka {KAFKA_VERSION}:\n{result.stdout}{result.stderr}")
        (staging / ".complete").write_text(KAFKA_VERSION + "\n")
        shutil.rmtree(lib, ignore_errors=True)
        staging.rename(lib)
    return lib


def _java(lib: Path, main: str, *args: str, opts: tuple[str, ...] = ()) -> list[str]:
    return ["java", *opts, "-cp", f"{lib}/*", main, *args]


@dataclass
class KafkaNode:
    node_id: int
    port: int  # the client listener (PLAINTEXT)
    controller_port: int
    data_dir: Path
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, repr=False)
    #: an optional third listener (``PROXIED``) on ``proxied_port`` whose metadata advertises
    #: ``proxy_port`` instead: a client bootstrapped there reaches every node through whatever
    #: listens on the proxy ports (the fault suite's connection-dropping TCP proxy)
    proxied_port: int | None = None
    proxy_port: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.alive else None  # type: ignore[union-attr]


def node_properties(node: KafkaNode, voters: str, nodes: int) -> str:
    """server.properties of one combined broker+controller node (pure).

    Internal topics get the replication of the cluster (3 at most) so that losing one node of
    three loses no consumer offsets; topics are never created implicitly (the services create
    theirs, with the replication factor they decide, helpdesk_common.kafka).
    """
    rf = min(3, nodes)
    proxied = node.proxied_port is not None and node.proxy_port is not None
    return "\n".join([
        "process.roles=broker,controller",
        f"node.id={node.node_id}",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        + (f",PROXIED://127.0.0.1:{node.proxied_port}" if proxied else ""),
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}"
        + (f",PROXIED://127.0.0.1:{node.proxy_port}" if proxied else ""),
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
        + (",PROXIED:PLAINTEXT" if proxied else ""),
        f"log.dirs={node.data_dir / 'log'}",
        "auto.create.topics.enable=false",
        "num.partitions=1",
        f"default.replication.factor={rf}",
        f"offsets.topic.replication.factor={rf}",
        f"transaction.state.log.replication.factor={rf}",
        f"transaction.state.log.min.isr={max(1, rf - 1)}",
        f"share.coordinator.state.topic.replication.factor={rf}",
        f"share.coordinator.state.topic.min.isr={max(1, rf - 1)}",
        "group.initial.rebalance.delay.ms=0",
        # two cores for everything on the machines this runs on: few threads per node
        "num.network.threads=2",
        "num.io.threads=2",
        "background.threads=2",
        "num.recovery.threads.per.data.dir=1",
        "log.segment.bytes=67108864",
        "",
    ])


class ApacheKafkaCluster:
    """1 or 3 (any n) KRaft nodes on 127.0.0.1 free ports under ``root``.

    Has what ``devstack.EmbeddedBroker`` has (``bootstrap``, ``start``, ``stop``) so a
    ``Stack`` can run on either broker, plus ``kill``/``restart`` of one node.
    """

    def __init__(self, root: Path, nodes: int = 3, *, base_port: int | None = None, log_level: str = "INFO",
                 proxied: bool = False) -> None:
        """Node i listens on base + 2(i-1) (clients) and the next port (controller); without
        ``base_port``, on a free block below the ephemeral range. ``proxied``: every node also
        gets a ``PROXIED`` listener advertising a proxy port (``proxied_bootstrap``; nothing
        listens there until the caller runs a proxy from each ``proxy_port`` to ``proxied_port``)."""
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.root = Path(root)
        self.log_level = log_level
        base = base_port or free_block(2 * nodes)
        self.nodes = [
            KafkaNode(i + 1, base + 2 * i, base + 2 * i + 1, self.root / f"node-{i + 1}",
                      self.root / "logs" / f"kafka-{i + 1}.log")
            for i in range(nodes)
        ]
        if proxied:
            for node in self.nodes:
                node.proxied_port, node.proxy_port = free_port(), free_port()
        self.voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        self.cluster_id: str | None = None
        self.lib: Path | None = None
        self._atexit = False

    @property
    def bootstrap(self) -> str:
        return ",".join(n.address for n in self.nodes)

    @property
    def proxied_bootstrap(self) -> str:
        """The proxy ports of a ``proxied`` cluster: a client bootstrapped here only ever meets them."""
        return ",".join(f"127.0.0.1:{n.proxy_port}" for n in self.nodes if n.proxy_port)

    def node(self, node_id: int) -> KafkaNode:
        return self.nodes[node_id - 1]

    # ---- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        """Resolve, format (once per data directory), start every node, wait until all are brokers."""
        self.prepare()
        self.spawn()
        self.wait_ready(timeout)

    def prepare(self) -> None:
        """Resolve the jars and format each node's storage (once per data directory); runs no
        node, so it may run in a worker thread while the caller does something else."""
        self.lib = resolve_jars()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        (self.root / "log4j2.properties").write_text(LOG4J2.format(level=self.log_level))
        self._format()

    def spawn(self) -> None:
        """Start every node without waiting for it (``wait_ready`` does).

        Call it (and ``restart``) from a thread that lives as long as the cluster, e.g. the main
        thread: the nodes get SIGTERM when the thread that started them ends (PR_SET_PDEATHSIG
        follows the thread, not the process).
        """
        if self.lib is None:
            self.prepare()
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        for node in self.nodes:
            self._spawn(node)

    def _format(self) -> None:
        id_file = self.root / "cluster.id"
        if id_file.exists():
            self.cluster_id = id_file.read_text().strip()
        else:
            out = subprocess.run(_java(self.lib, "kafka.tools.StorageTool", "random-uuid"),  # type: ignore[arg-type]
                                 capture_output=True, text=True, check=True, timeout=60)
            self.cluster_id = out.stdout.strip().splitlines()[-1]
            id_file.write_text(self.cluster_id + "\n")
        formats = []
        for node in self.nodes:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            props = node.data_dir / "server.properties"
            props.write_text(node_properties(node, self.voters, len(self.nodes)))
            if (node.data_dir / "log" / "meta.properties").exists():
                continue
            formats.append(subprocess.Popen(
                _java(self.lib, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,  # type: ignore[arg-type]
                      "-c", str(props), "--ignore-formatted", opts=("-Xmx128m",)),
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        for proc in formats:
            out, _ = proc.communicate(timeout=120)
            if proc.returncode != 0:
                raise RuntimeError(f"kafka storage format failed: {out}")

    def _spawn(self, node: KafkaNode) -> None:
        log = open(node.log_path, "ab")
        opts = (*JVM_OPTS, f"-Dlog4j2.configurationFile={self.root / 'log4j2.properties'}",
                f"-Dkafka.logs.dir={self.root / 'logs'}")
        node.proc = subprocess.Popen(
            _java(self.lib, "kafka.Kafka", str(node.data_dir / "server.properties"), opts=opts),  # type: ignore[arg-type]
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()

    def wait_ready(self, timeout: float = 120, *, brokers: int | None = None) -> None:
        """Until the metadata of a live node lists ``brokers`` (default: the live nodes) brokers."""
        deadline = time.monotonic() + timeout
        live = [n for n in self.nodes if n.alive]
        want = brokers if brokers is not None else len(live)
        for node in live:
            self._wait_port(node, deadline)
        last: object = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc is not None and node.proc.poll() is not None and node in live:
                    raise RuntimeError(f"kafka node {node.node_id} exited with {node.proc.returncode}; see {node.log_path}")
            try:
                count = _run(_broker_count(",".join(n.address for n in live), 3.0))
                if count >= want:
                    return
                last = f"{count} of {want} brokers registered"
            except Exception as exc:  # not up yet
                last = exc
            time.sleep(0.3)
        raise TimeoutError(f"Apache Kafka not ready within {timeout}s ({last!r}); logs in {self.root / 'logs'}")

    @staticmethod
    def _wait_port(node: KafkaNode, deadline: float) -> None:
        while True:
            if not node.alive:
                raise RuntimeError(f"kafka node {node.node_id} exited; see {node.log_path}")
            try:
                wait_tcp("127.0.0.1", node.port, 0.5)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise

    def kill(self, node_id: int) -> None:
        """SIGKILL one node (no shutdown: what a crash or an OOM kill does) and reap it."""
        node = self.node(node_id)
        if node.alive:
            node.proc.kill()  # type: ignore[union-attr]
            node.proc.wait()  # type: ignore[union-attr]

    def restart(self, node_id: int, timeout: float = 90) -> None:
        """Start a stopped or killed node again on its data and ports; wait until every live
        node is a broker again."""
        node = self.node(node_id)
        if node.alive:
            self.stop_node(node_id)
        self._spawn(node)
        self.wait_ready(timeout)

    def stop_node(self, node_id: int, timeout: float = 30) -> None:
        node = self.node(node_id)
        if node.alive:
            node.proc.terminate()  # type: ignore[union-attr]
            try:
                node.proc.wait(timeout)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                node.proc.kill()  # type: ignore[union-attr]
                node.proc.wait()  # type: ignore[union-attr]

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every node at once (a controlled shutdown), SIGKILL what is left after ``timeout``."""
        live = [n for n in self.nodes if n.alive]
        for node in live:
            node.proc.terminate()  # type: ignore[union-attr]
        deadline = time.monotonic() + timeout
        for node in live:
            try:
                node.proc.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                node.proc.kill()  # type: ignore[union-attr]
                node.proc.wait()  # type: ignore[union-attr]

    def rss_mb(self) -> dict[int, float]:
        """Resident memory per live node, in MB (from /proc)."""
        out = {}
        for node in self.nodes:
            if node.alive:
                try:
                    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
                        if line.startswith("VmRSS:"):
                            out[node.node_id] = int(line.split()[1]) / 1024
                except OSError:
                    pass
        return out


async def _broker_count(bootstrap: str, timeout: float) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return len(cluster["brokers"])
    finally:
        await admin.close()


def _run(coro):  # noqa: ANN001, ANN202
    """Run a coroutine to completion from sync code, inside a running event loop or not."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - handed back to the caller
            result["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def main() -> None:
    parser = argparse.ArgumentParser(description="Run an Apache Kafka cluster (KRaft) on 127.0.0.1 in the foreground.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--data-dir", default=".data/kafka", help="kept between runs (delete it for a new cluster)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("KAFKA_PORT", "9092")),
                        help="node i's clients connect to port + 2(i-1), its controller listens on the next one")
    args = parser.parse_args()
    cluster = ApacheKafkaCluster(Path(args.data_dir).resolve(), args.nodes, base_port=args.port)
    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        print(f"resolving Apache Kafka {KAFKA_VERSION} ({cache_dir()}) and starting {args.nodes} node(s)...", flush=True)
        cluster.start()
        print(f"\nApache Kafka {KAFKA_VERSION} is up in {time.monotonic() - started:.1f} s (Ctrl-C stops it).")
        print(f"  KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}")
        print(f"  data and logs: {cluster.root}", flush=True)
        while all(n.alive for n in cluster.nodes):
            time.sleep(1)
        print("a node exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("stopping...", flush=True)
        cluster.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    main()
