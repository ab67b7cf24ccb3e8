"""The fault suite (``make chaos``): the whole stack scaled out on a real 3-node Apache Kafka, a
steady intake through both gateways, faults injected one after another, then proof that nothing
was lost, nothing applied twice and nothing applied out of order.

What runs (docs/kafka.md, "The fault suite"):

- a 3-node KRaft cluster (``helpdesk_common.apache_kafka``), PostgreSQL, and two processes of
  every service, the gateway included (``Stack.start_services(replicas=2)``: each gateway spreads
  its requests over both replicas of each service, ``gateway/proxy/upstreams.py``);
- at least ``--tickets`` tickets posted at ``--rate`` per second by a channel key (on until the last
  fault has recovered), alternating between the two gateways; a request that fails (connection refused, 5xx, timeout) is sent again with the
  same ``Idempotency-Key`` (to the other gateway) until it is acknowledged; every tenth ticket is
  then opened and solved by an admin (events that must be applied in order);
- while that runs, in turn: each broker SIGKILLed and restarted (the active controller once), every
  replica of every service SIGKILLed and restarted three times (six rounds, each losing one replica
  of every service at once), PostgreSQL stopped in immediate mode and
  restarted, a customer-svc replica SIGSTOPped past its consumer session and resumed, and one
  ticket-svc replica's broker connections (all through ``DroppingProxy``) cut repeatedly, then
  refused, then restored. After each
  fault: how long until the component was back, and until every ticket acknowledged by then was
  linked to a customer, timed by sla-svc and counted by analytics-svc.

Then it checks, and writes to the JSON report (``--report``): every acknowledged ticket exists
exactly once; each has one customer, one SLA timer row and one analytics count; the solved ones
are solved in every projection (no older event applied after a newer one); every outbox drained,
consumer lag 0, no dead letters; duplicate records on the topics counted. Exit 0 only when every
check holds. Bounded: ``--deadline`` (default 20 minutes) for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from helpdesk_common import events
from helpdesk_common.apache_kafka import ApacheKafkaCluster
from helpdesk_common.devstack import PORT_BLOCK, SERVICES, Stack, StackConfig, free_block, free_port, replica_key
from helpdesk_common.kafka import high_watermarks

SERVICE_NAMES = [s.name for s in SERVICES]
#: the consumer session timeout (helpdesk_common/consumer.py): a SIGSTOP longer than this moves
#: the paused replica's partitions to the other one
SESSION_S = 10.0
#: a fault's catch-up (every ticket acknowledged by the time the component was back is complete) is
#: measured and reported, and must end before the run's bound less this reserve for the final
#: checks. A fixed bound per fault (240 s, then 420 s) measured the machine rather than the system:
#: on a slower 2-core runner the backlog that the six kill rounds build takes longer to drain, and
#: the final checks, not a per-fault timer, prove that nothing was lost or applied twice.
FINAL_CHECKS_RESERVE_S = 150.0
#: rounds of service kills: in each, replica 1 and then replica 2 of every service is SIGKILLed
KILL_ROUNDS = 3
#: the replica whose every broker connection goes through ``DroppingProxy`` (ticket-svc: it
#: produces the most and consumes; the kill rounds kill it too and restart it behind the proxy)
PROXIED = replica_key("ticket-svc", 2)


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 from each node's proxy port to its ``PROXIED`` listener
    (``ApacheKafkaCluster(proxied=True)``), in a thread with its own event loop (it must run before
    the proxied replica starts, and the scenario's loop only exists later). ``drop()`` aborts every
    open connection (an RST to both ends: a cut link, not a close), ``refuse(True)`` aborts new ones
    as they arrive. The replica's clients bootstrap on the proxy ports and meet them in every
    metadata answer, so all of its Kafka traffic crosses here."""

    def __init__(self, routes: list[tuple[int, int]]) -> None:
        self.routes = routes
        self.loop = asyncio.new_event_loop()
        self.links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self.refusing = False
        self.accepted = self.dropped = self.refused = 0
        self._servers: list[asyncio.base_events.Server] = []
        self._thread = threading.Thread(target=self.loop.run_forever, name="kafka-proxy", daemon=True)

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    async def _listen(self) -> None:
        for listen, target in self.routes:
            self._servers.append(await asyncio.start_server(
                lambda r, w, target=target: self._link(r, w, target), "127.0.0.1", listen))

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int) -> None:
        if self.refusing:
            self.refused += 1
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:  # the node is down: the client sees its connection cut, as without a proxy
            writer.transport.abort()
            return
        self.accepted += 1
        link = (writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self.links.discard(link)
            for w in link:
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()  # one direction ended: the link is over

    def drop(self) -> int:
        """Cut every open connection now; returns how many."""
        async def cut() -> int:
            links = list(self.links)
            for link in links:
                for w in link:
                    w.transport.abort()
            self.dropped += len(links)
            return len(links)
        return asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    def refuse(self, on: bool) -> None:
        self.refusing = on

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            for server in self._servers:
                self.loop.call_soon_threadsafe(server.close)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    def counts(self) -> dict[str, int]:
        return {"connections": self.accepted, "dropped": self.dropped, "refused": self.refused}


def log(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- the load ---------------------------------------------------------------------------------


@dataclass
class Load:
    gateways: list[str]
    channel_key: str
    creds: dict[str, str]
    tag: str
    total: int
    rate: float
    acknowledged: dict[int, tuple[uuid.UUID, float]] = field(default_factory=dict)  # index -> (id, when)
    solved: set[uuid.UUID] = field(default_factory=set)
    retries: Counter = field(default_factory=Counter)
    given_up: list[int] = field(default_factory=list)
    finished: bool = False
    #: set when the last fault is done: the load goes on past ``total`` until then, so every fault
    #: meets traffic however long the ones before it took to recover
    faults_done: asyncio.Event = field(default_factory=asyncio.Event)
    posted: int = 0
    admin_token: str = ""
    _login: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def admin_headers(self, client: httpx.AsyncClient, *, stale: str | None = None) -> dict[str, str]:
        """An admin's bearer token, signed in again when ``stale`` (the one that got a 401) is the
        current one: the run lasts longer than an access token."""
        async with self._login:
            if not self.admin_token or self.admin_token == stale:
                self.admin_token = await login(client, self.gateways, self.creds)
        return {"Authorization": f"Bearer {self.admin_token}"}

    def acked_before(self, moment: float) -> list[uuid.UUID]:
        return [ticket_id for ticket_id, at in self.acknowledged.values() if at <= moment]

    async def run(self, client: httpx.AsyncClient) -> None:
        started = time.monotonic()
        gate = asyncio.Semaphore(64)
        tasks = []
        i = 0
        while i < self.total or not self.faults_done.is_set():
            delay = started + i / self.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            task = asyncio.create_task(self._one(client, i))
            task.add_done_callback(lambda _t: gate.release())
            tasks.append(task)
            i += 1
        self.posted = i
        await asyncio.gather(*tasks)
        self.finished = True

    async def _send(self, client: httpx.AsyncClient, i: int, method: str, path: str, *, headers: dict[str, str],
                    body: dict[str, Any], ok: tuple[int, ...], give_up_s: float = 240) -> httpx.Response | None:
        """Until acknowledged: the same request (same Idempotency-Key) to the other gateway after a
        failure that may or may not have been applied."""
        deadline = time.monotonic() + give_up_s
        attempt = 0
        while time.monotonic() < deadline:
            gateway = self.gateways[(i + attempt) % len(self.gateways)]
            try:
                r = await client.request(method, gateway + path, headers=headers, json=body, timeout=20)
                if r.status_code in ok:
                    return r
                self.retries[f"{method} {r.status_code}"] += 1
                if r.status_code == 401 and method != "POST":  # the admin's token expired
                    headers = await self.admin_headers(client, stale=headers["Authorization"].split()[-1])
                    continue
                if r.status_code < 500 and r.status_code not in (409, 429):
                    raise RuntimeError(f"{method} {path} refused: {r.status_code} {r.text[:300]}")
            except httpx.HTTPError as exc:
                self.retries[f"{method} {type(exc).__name__}"] += 1
            attempt += 1
            await asyncio.sleep(min(2.0, 0.2 * attempt))
        return None

    async def _one(self, client: httpx.AsyncClient, i: int) -> None:
        key = f"{self.tag}-{i}"
        r = await self._send(client, i, "POST", "/v1/tickets", ok=(200, 201), headers={
            "Authorization": f"Bearer {self.channel_key}", "Idempotency-Key": key}, body={
            "subject": f"chaos {i}", "requester": {"email": f"{key}@example.com"},
            "priority": ("low", "normal", "high", "urgent")[i % 4], "tags": [self.tag]})
        if r is None:
            self.given_up.append(i)
            return
        ticket_id = uuid.UUID(r.json()["id"])
        self.acknowledged[i] = (ticket_id, time.monotonic())
        if i % 10 == 0:  # two more events per ticket that must be applied in order
            admin = await self.admin_headers(client)
            for status in ("open", "solved"):
                if await self._send(client, i, "PATCH", f"/v1/tickets/{ticket_id}", headers=admin,
                                    body={"status": status}, ok=(200,)) is None:
                    self.given_up.append(i)
                    return
            self.solved.add(ticket_id)


# ---- the databases ------------------------------------------------------------------------------


class Databases:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.pools: dict[str, asyncpg.Pool] = {}

    async def pool(self, service: str) -> asyncpg.Pool:
        if service not in self.pools:
            dsn = self.stack.database_url(service).replace("postgresql+asyncpg://", "postgresql://")
            self.pools[service] = await asyncpg.create_pool(dsn, min_size=0, max_size=2)
        return self.pools[service]

    async def value(self, service: str, query: str, *args: Any) -> Any:
        pool = await self.pool(service)
        return await pool.fetchval(query, *args, timeout=20)

    async def close(self) -> None:
        for pool in self.pools.values():
            pool.terminate()

    async def completed(self, ids: list[uuid.UUID]) -> dict[str, int]:
        """How many of ``ids`` are linked (ticket-svc), timed (sla-svc) and counted (analytics-svc)."""
        return {
            "linked": await self.value("ticket-svc", "SELECT count(*) FROM tickets WHERE id = ANY($1::uuid[]) "
                                       "AND customer_id IS NOT NULL AND first_response_due_at IS NOT NULL", ids),
            "timed": await self.value("sla-svc", "SELECT count(DISTINCT ticket_id) FROM sla_timers "
                                      "WHERE ticket_id = ANY($1::uuid[])", ids),
            "counted": await self.value("analytics-svc", "SELECT count(*) FROM ticket_facts "
                                        "WHERE ticket_id = ANY($1::uuid[]) AND customer_id IS NOT NULL", ids),
        }


async def stuck(db: Databases, ids: list[uuid.UUID], limit: int = 5) -> dict[str, list[str]]:
    """Up to ``limit`` of ``ids`` each service has not got to (where to look when one never does)."""
    missing = {
        "not stored": await db.value("ticket-svc", "SELECT array_agg(i) FROM unnest($1::uuid[]) i WHERE NOT EXISTS ("
                                     "SELECT 1 FROM tickets t WHERE t.id = i)", ids),
        "not linked": await db.value("ticket-svc", "SELECT array_agg(i) FROM unnest($1::uuid[]) i WHERE NOT EXISTS ("
                                     "SELECT 1 FROM tickets t WHERE t.id = i AND t.customer_id IS NOT NULL "
                                     "AND t.first_response_due_at IS NOT NULL)", ids),
        "not timed": await db.value("sla-svc", "SELECT array_agg(i) FROM unnest($1::uuid[]) i WHERE NOT EXISTS ("
                                    "SELECT 1 FROM sla_timers s WHERE s.ticket_id = i)", ids),
        "not counted": await db.value("analytics-svc", "SELECT array_agg(i) FROM unnest($1::uuid[]) i WHERE NOT "
                                      "EXISTS (SELECT 1 FROM ticket_facts f WHERE f.ticket_id = i "
                                      "AND f.customer_id IS NOT NULL)", ids),
    }
    return {k: [str(i) for i in (v or [])[:limit]] for k, v in missing.items() if v}


async def wait_complete(db: Databases, ids: list[uuid.UUID], timeout: float) -> tuple[bool, dict[str, int]]:
    deadline = time.monotonic() + timeout
    state: dict[str, int] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # PostgreSQL may be the fault being recovered from
            state = await db.completed(ids)
            if all(v == len(ids) for v in state.values()):
                return True, state
        await asyncio.sleep(1)
    return False, state


# ---- the faults ---------------------------------------------------------------------------------


async def healthy(url: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/readyz")).status_code == 200:
                    return True
            await asyncio.sleep(0.3)
    return False


async def active_controller(cluster: ApacheKafkaCluster) -> int:
    proc = await asyncio.create_subprocess_exec(
        "java", "-Xmx128m", "-cp", f"{cluster.lib}/*", "org.apache.kafka.tools.MetadataQuorumCommand",
        "--bootstrap-server", cluster.bootstrap, "describe", "--status",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    found = re.search(rb"LeaderId:\s*(\d+)", out)
    if not found:
        raise RuntimeError(f"no quorum leader in: {out[-500:]!r}")
    return int(found.group(1))


async def brokers_ready(cluster: ApacheKafkaCluster, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=cluster.bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            described = await admin.describe_cluster()
            if len(described.get("brokers", [])) == len(cluster.nodes):
                return True
        except Exception:  # noqa: BLE001 - not yet
            pass
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        await asyncio.sleep(0.5)
    return False


@dataclass
class Fault:
    kind: str
    target: str
    down_s: float = 0.0
    back_s: float | None = None  # from the injection until the component answered again
    caught_up_s: float | None = None  # ... until every ticket acknowledged by then was complete
    tickets_checked: int = 0
    ok: bool = False
    note: str = ""
    #: wall clock (ms since the epoch) at the injection: lines a duplicate record's timestamp up
    #: with the fault that produced it
    at_ms: int = field(default_factory=lambda: int(time.time() * 1000))


class Injector:
    def __init__(self, cluster: ApacheKafkaCluster, stack: Stack, db: Databases, load: Load,
                 proxy: DroppingProxy | None = None, *, catch_up_until: float) -> None:
        self.cluster, self.stack, self.db, self.load, self.proxy = cluster, stack, db, load, proxy
        self.catch_up_until = catch_up_until  # time.monotonic() by which every catch-up must be done
        self.faults: list[Fault] = []
        self.catch_ups: list[asyncio.Task[None]] = []
        self.kills: Counter = Counter()  # replica key -> SIGKILLs

    async def _finish(self, fault: Fault, started: float, back: bool) -> None:
        """Record when the component was back; the catch-up (every ticket acknowledged by then
        linked, timed and counted) is awaited in the background, so the next fault starts at once
        and the run fits its bound on two cores."""
        fault.back_s = round(time.monotonic() - started, 2) if back else None
        ids = self.load.acked_before(time.monotonic())
        fault.tickets_checked = len(ids)
        self.faults.append(fault)
        log(f"{fault.kind} {fault.target}: back {fault.back_s} s ({len(ids)} tickets acknowledged by then)")
        self.catch_ups.append(asyncio.create_task(self._caught_up(fault, started, back, ids)))

    async def _caught_up(self, fault: Fault, started: float, back: bool, ids: list[uuid.UUID]) -> None:
        done, state = await wait_complete(self.db, ids, max(1.0, self.catch_up_until - time.monotonic()))
        fault.caught_up_s = round(time.monotonic() - started, 2) if done else None
        fault.ok = back and done
        if not done:
            fault.note = (f"not caught up by the run's bound less {FINAL_CHECKS_RESERVE_S:.0f} s: {state} of "
                          f"{len(ids)}; {await stuck(self.db, ids)}")
        log(f"{fault.kind} {fault.target}: caught up {fault.caught_up_s} s{' ' + fault.note if fault.note else ''}")

    async def broker(self, node_id: int, *, label: str, down_s: float = 10.0) -> None:
        fault = Fault("broker SIGKILL", f"node {node_id} ({label})", down_s)
        started = time.monotonic()
        self.cluster.kill(node_id)
        await asyncio.sleep(down_s)
        self.cluster._spawn(self.cluster.node(node_id))  # noqa: SLF001 - from the main thread, no blocking wait
        await self._finish(fault, started, await brokers_ready(self.cluster, 120))

    async def replicas_lost(self, replica: int, round_no: int) -> None:
        """One replica of every service SIGKILLed at once (a node lost with one process of each),
        then all restarted under the same keys (the same relay transactional ids)."""
        keys = [replica_key(name, replica) for name in SERVICE_NAMES]
        fault = Fault("service SIGKILL", f"replica {replica} of every service (round {round_no})")
        started = time.monotonic()
        procs = [self.stack.procs[key] for key in keys]
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        self.kills.update(keys)
        for name in SERVICE_NAMES:
            self.stack.start_service(name, replica=replica)
        back = all([await healthy(self.stack.url_of(key), 90) for key in keys])
        await self._finish(fault, started, back)

    async def postgres(self, down_s: float = 5.0) -> None:
        fault = Fault("PostgreSQL immediate stop", "postgres", down_s)
        pg = self.stack.pg
        started = time.monotonic()
        pg.proc.send_signal(signal.SIGQUIT)  # immediate shutdown: no checkpoint, clients cut off
        await asyncio.to_thread(pg.proc.wait, 30)
        await asyncio.sleep(down_s)
        pg.start()  # from the main thread (children die with the thread that started them); ~1 s of blocking
        back = all([await healthy(self.stack.url_of(name), 60) for name in SERVICE_NAMES])
        await self._finish(fault, started, back)

    async def pause(self, key: str, paused_s: float = SESSION_S + 6) -> None:
        fault = Fault("consumer SIGSTOP", key, paused_s)
        proc = self.stack.procs[key]
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGSTOP)
        await asyncio.sleep(paused_s)
        os.killpg(proc.pid, signal.SIGCONT)
        await self._finish(fault, started, await healthy(self.stack.url_of(key), 60))

    async def proxy_drops(self, proxy: DroppingProxy, key: str, *, for_s: float = 30.0, every_s: float = 3.0,
                          refused_s: float = 6.0) -> None:
        """One replica's broker connections cut every ``every_s`` for ``for_s``, then new ones
        refused for ``refused_s`` (a flapping link, then none), then the link restored."""
        fault = Fault("broker link cut (TCP proxy)", key, for_s + refused_s)
        started = time.monotonic()
        cuts = 0
        while time.monotonic() - started < for_s:
            cuts += await asyncio.to_thread(proxy.drop)
            await asyncio.sleep(every_s)
        proxy.refuse(True)
        cuts += await asyncio.to_thread(proxy.drop)
        await asyncio.sleep(refused_s)
        proxy.refuse(False)
        fault.note = f"{cuts} connections cut"
        await self._finish(fault, started, await healthy(self.stack.url_of(key), 60))

    async def run(self, pause_between_s: float = 3.0) -> None:
        await asyncio.sleep(15)  # the load first, so the first fault meets traffic
        controller = await active_controller(self.cluster)
        others = [n.node_id for n in self.cluster.nodes if n.node_id != controller]
        plan: list[Any] = [
            lambda: self.broker(others[0], label="broker"),
            lambda: self.broker(controller, label="active controller"),
            lambda: self.broker(others[1], label="broker"),
        ]
        # every replica of every service SIGKILLed three times: six rounds, each losing one
        # replica of every service at once, replica 1 and replica 2 in turn
        for round_no in range(1, KILL_ROUNDS + 1):
            for replica in (1, 2):
                plan.append(lambda replica=replica, round_no=round_no: self.replicas_lost(replica, round_no))
        plan.append(lambda: self.postgres())
        plan.append(lambda: self.pause(replica_key("customer-svc", 2)))
        if self.proxy is not None:
            plan.append(lambda: self.proxy_drops(self.proxy, PROXIED))
        try:
            for step in plan:
                await step()
                await asyncio.sleep(pause_between_s)
        finally:
            self.load.faults_done.set()
        await asyncio.gather(*self.catch_ups)


# ---- the final checks ---------------------------------------------------------------------------


async def consumer_lag(bootstrap: str, prefix: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                isolation_level="read_committed")
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if g[0].startswith(prefix)]
        lag: dict[str, int] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            ends = await consumer.end_offsets(list(offsets)) if offsets else {}
            lag[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in offsets.items())
        return lag
    finally:
        await consumer.stop()
        await admin.close()


async def topic_records(bootstrap: str, topics: list[str], *, until: float) -> tuple[Counter, Counter, list[dict]]:
    """(records per topic, duplicate records per topic: the same event id read again, and where
    each duplicated event sits: its type, partition, offsets and record timestamps, which say
    which fault and which writer produced it)."""
    # what consumers see: committed records only (the relays write in transactions; a record of an
    # aborted pass stays in the log, skipped by every reader, and is no record "on the topic")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                isolation_level="read_committed")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or set())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        # to the high watermarks, not this reader's own end (the last stable offset): that stops
        # in front of a transaction committed a moment ago whose markers are still on their way,
        # and its records would go uncounted (docs/kafka.md)
        ends = await high_watermarks(bootstrap, partitions)
        seen: Counter = Counter()
        where: dict[tuple[str, Any], list[tuple[int, int, int]]] = {}
        types: dict[tuple[str, Any], str] = {}
        per_topic: Counter = Counter()
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = min(time.monotonic() + 180, until)
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
            for tp, records in batch.items():
                for record in records:
                    per_topic[tp.topic] += 1
                    event = orjson.loads(record.value)
                    key = (tp.topic, event.get("id"))
                    seen[key] += 1
                    where.setdefault(key, []).append((tp.partition, record.offset, record.timestamp))
                    types.setdefault(key, str(event.get("type")))
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        if remaining:
            raise RuntimeError(f"could not read the topics to their end: {sorted(map(str, remaining))[:5]}")
        duplicates: Counter = Counter()
        detail: list[dict] = []
        for (topic, event_id), n in seen.items():
            if n > 1:
                duplicates[topic] += n - 1
                detail.append({"topic": topic, "id": event_id, "type": types[(topic, event_id)],
                               "records": [{"partition": p, "offset": o, "timestamp_ms": t}
                                           for p, o, t in where[(topic, event_id)]]})
        return per_topic, duplicates, detail[:50]
    finally:
        await consumer.stop()


async def final_checks(db: Databases, load: Load, bootstrap: str, *, until: float) -> dict[str, Any]:
    """Every check, within ``until`` (time.monotonic()): each wait takes at most its own bound
    and what the run has left, keeping time for the ones after it, so a check that cannot pass
    is reported as failed rather than lost to the run's overall timeout."""
    ids = [ticket_id for ticket_id, _ in load.acknowledged.values()]
    checks: dict[str, Any] = {}
    done, state = await wait_complete(db, ids, max(5.0, min(180.0, until - time.monotonic() - 90)))
    checks["all linked, timed, counted"] = {"ok": done, **state, "acknowledged": len(ids),
                                            **({} if done else {"stuck": await stuck(db, ids)})}
    stored = await db.value("ticket-svc", "SELECT count(*) FROM tickets WHERE $1 = ANY(tags)", load.tag)
    distinct = await db.value("ticket-svc", "SELECT count(DISTINCT id) FROM tickets WHERE id = ANY($1::uuid[])", ids)
    checks["each acknowledged ticket exists once"] = {
        "ok": distinct == len(set(ids)) == len(ids) and stored >= len(ids), "stored_with_tag": stored,
        "acknowledged": len(ids), "unacknowledged_created": stored - len(ids), "given_up": len(load.given_up)}
    customers = await db.value("ticket-svc", "SELECT count(DISTINCT customer_id) FROM tickets "
                               "WHERE id = ANY($1::uuid[])", ids)
    projected = await db.value("customer-svc", "SELECT count(*) FROM customer_tickets WHERE ticket_id = ANY($1::uuid[])",
                               ids)
    checks["one customer per ticket"] = {"ok": customers == len(ids) == projected, "customers": customers,
                                         "customer_svc_ticket_rows": projected}
    timers = await db.value("sla-svc", "SELECT count(*) FROM sla_timers WHERE ticket_id = ANY($1::uuid[])", ids)
    checks["one SLA timer row per ticket"] = {"ok": timers == len(ids), "rows": timers}
    facts = await db.value("analytics-svc", "SELECT count(*) FROM ticket_facts WHERE ticket_id = ANY($1::uuid[])", ids)
    checks["one analytics count per ticket"] = {"ok": facts == len(ids), "rows": facts}
    solved = list(load.solved)
    in_order = {
        "ticket-svc": await db.value("ticket-svc", "SELECT count(*) FROM tickets WHERE id = ANY($1::uuid[]) "
                                     "AND status = 'solved'", solved),
        "customer-svc": await db.value("customer-svc", "SELECT count(*) FROM customer_tickets "
                                       "WHERE ticket_id = ANY($1::uuid[]) AND status = 'solved'", solved),
        "analytics-svc": await db.value("analytics-svc", "SELECT count(*) FROM ticket_facts "
                                        "WHERE ticket_id = ANY($1::uuid[]) AND status = 'solved'", solved),
    }
    checks["events applied in order (solved everywhere)"] = {
        "ok": all(v == len(solved) for v in in_order.values()), "solved": len(solved), **in_order}
    pending = {name: await db.value(name, "SELECT count(*) FROM outbox WHERE sent_at IS NULL") for name in SERVICE_NAMES}
    checks["outboxes drained"] = {"ok": not any(pending.values()), **pending}
    deadline = min(time.monotonic() + 60, until - 45)
    while True:
        lag = await consumer_lag(bootstrap, "")
        if not any(lag.values()) or time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    checks["consumer lag 0"] = {"ok": not any(lag.values()), "lagging": {g: n for g, n in lag.items() if n}}
    topics = sorted({*events.ALL_TOPICS})
    per_topic, duplicates, duplicated = await topic_records(bootstrap, [*topics, *(f"{t}.dlq" for t in topics)], until=until)
    dead = {t: n for t, n in per_topic.items() if t.endswith(".dlq")}
    checks["no dead letters"] = {"ok": not dead, **dead}
    checks["duplicate records on the topics"] = {
        "ok": not duplicates, "records": sum(n for t, n in per_topic.items() if not t.endswith(".dlq")),
        "duplicates": sum(duplicates.values()), "by_topic": dict(duplicates), "duplicated": duplicated}
    return checks


# ---- the run ------------------------------------------------------------------------------------


async def login(client: httpx.AsyncClient, gateways: list[str], creds: dict[str, str]) -> str:
    """Sign the admin in through whichever gateway answers (one may be the fault of the moment)."""
    for attempt in range(60):
        try:
            r = await client.post(gateways[attempt % len(gateways)] + "/v1/auth/login", timeout=20, json={
                "email": creds["admin_email"], "password": creds["admin_password"]})
            if r.status_code == 200:
                return r.json()["access_token"]
        except httpx.HTTPError:
            pass
        await asyncio.sleep(1)
    raise RuntimeError("the admin could not sign in for a minute")


async def scenario(cluster: ApacheKafkaCluster, stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    creds = stack.creds
    gateways = [stack.url_of(replica_key("gateway", r)) for r in (1, 2)]
    load = Load(gateways=gateways, channel_key=creds["channel_api_key"], creds=creds,
                tag=f"chaos-{uuid.uuid4().hex[:8]}", total=args.tickets, rate=args.rate)
    db = Databases(stack)
    proxy = getattr(stack, "kafka_proxy", None)
    injector = Injector(cluster, stack, db, load, proxy, catch_up_until=args.catch_up_until)
    started = time.monotonic()
    try:
        limits = httpx.Limits(max_connections=128, max_keepalive_connections=64)
        async with httpx.AsyncClient(limits=limits) as client:
            load_task = asyncio.create_task(load.run(client))
            await injector.run()
            await load_task
        load_s = time.monotonic() - started
        log(f"load done: {len(load.acknowledged)} of {load.total} acknowledged in {load_s:.0f} s; retries "
            f"{dict(load.retries)}; checking")
        checks = await final_checks(db, load, cluster.bootstrap,
                                    until=args.catch_up_until + FINAL_CHECKS_RESERVE_S - 15)
    finally:
        await db.close()
    every_fault_ran = len(injector.faults) == 3 + 2 * KILL_ROUNDS + 2 + (proxy is not None)
    every_replica = [replica_key(name, r) for name in SERVICE_NAMES for r in (1, 2)]
    every_replica_killed = all(injector.kills[key] == KILL_ROUNDS for key in every_replica)
    return {
        "kafka_proxy": {"replica": PROXIED, **proxy.counts()} if proxy is not None else None,
        "tickets": {"planned": load.total, "posted": load.posted, "acknowledged": len(load.acknowledged),
                    "rate_per_s": load.rate,
                    "load_s": round(load_s, 1), "retried_requests": dict(load.retries),
                    "status_changed": len(load.solved)},
        "faults": [fault.__dict__ for fault in injector.faults],
        "every_fault_ran": every_fault_ran,
        "service_kills": {key: injector.kills[key] for key in every_replica},
        "checks": checks,
        "ok": every_fault_ran and every_replica_killed and all(f.ok for f in injector.faults)
        and all(c["ok"] for c in checks.values()),
    }


def start(args: argparse.Namespace, root: Path) -> tuple[ApacheKafkaCluster, Stack]:
    cluster = ApacheKafkaCluster(root / "kafka", nodes=3, proxied=True)
    base = free_block(PORT_BLOCK)
    # 14 service processes on one PostgreSQL (max_connections 300): smaller pools than the default 20
    pools = {f"{s.env_prefix}{name}": "5" for s in SERVICES for name in ("DB_POOL_SIZE", "DB_RAW_POOL_SIZE")}
    stack = Stack(StackConfig(
        data_dir=root / "stack", gateway_port=base, service_base_port=base, pg_port=free_port(),
        kafka_bootstrap=cluster.bootstrap, ephemeral=True,
        # the suite crashes PostgreSQL: an acknowledged ticket must survive that, as it does on a
        # production server (synchronous_commit on); run 7 lost one to the test default's "off"
        durable_commits=True,
        extra_env={"PUBLIC_BASE_URL": f"http://127.0.0.1:{base}", **pools}))
    cluster.prepare()
    stack.start_infra()
    cluster.spawn()
    stack.migrate()
    cluster.wait_ready(180)
    log(f"3-node Apache Kafka ready: {cluster.bootstrap}; starting 2 replicas of every service "
        f"({PROXIED} through a TCP proxy: {cluster.proxied_bootstrap})")
    proxy = DroppingProxy([(n.proxy_port, n.proxied_port) for n in cluster.nodes])
    proxy.start()
    stack.kafka_proxy = proxy
    stack.replica_env[PROXIED] = {"KAFKA_BOOTSTRAP_SERVERS": cluster.proxied_bootstrap}
    stack.start_services(replicas=2)
    stack.creds = stack.bootstrap()
    return cluster, stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=int(os.environ.get("CHAOS_TICKETS", "10000")))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("CHAOS_RATE", "15")))
    parser.add_argument("--deadline", type=float, default=float(os.environ.get("CHAOS_DEADLINE_S", "1200")))
    parser.add_argument("--report", default=os.environ.get("CHAOS_REPORT", ".data/chaos/report.json"))
    args = parser.parse_args()
    # aiokafka logs every refused connection to a killed broker at ERROR: the report says what matters
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    def out_of_time(_signum: int, _frame: object) -> None:  # the start-up (no event loop yet)
        raise TimeoutError(f"the fault suite did not finish within {args.deadline:.0f} s")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(int(args.deadline))
    report: dict[str, Any] = {"ok": False}
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="helpdesk-chaos-") as tmp:
        cluster = stack = None
        try:
            cluster, stack = start(args, Path(tmp))
            report["start_s"] = round(time.monotonic() - began, 1)
            signal.alarm(0)  # from here the event loop keeps the bound (a signal handler cannot raise into it)
            remaining = max(1.0, args.deadline - (time.monotonic() - began))
            args.catch_up_until = began + args.deadline - FINAL_CHECKS_RESERVE_S
            try:
                report.update(asyncio.run(asyncio.wait_for(scenario(cluster, stack, args), remaining)))
            except asyncio.TimeoutError:
                raise TimeoutError(f"the fault suite did not finish within {args.deadline:.0f} s") from None
        except BaseException as exc:  # noqa: BLE001 - the report says what stopped it
            report["error"] = f"{type(exc).__name__}: {exc}"
            log(f"stopped: {report['error']}")
        finally:
            signal.alarm(0)
            if stack is not None:
                stack.stop_all()
                if getattr(stack, "kafka_proxy", None) is not None:
                    stack.kafka_proxy.stop()
            if cluster is not None:
                cluster.stop()
            if not report.get("ok"):  # the services' and brokers' logs, for the failure's story
                kept = Path(args.report).parent / "logs"
                shutil.rmtree(kept, ignore_errors=True)
                for source in (Path(tmp) / "stack" / "logs", Path(tmp) / "kafka" / "logs"):
                    if source.exists():
                        shutil.copytree(source, kept / source.parent.name)
                report["logs"] = str(kept)
    report["total_s"] = round(time.monotonic() - began, 1)
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(summary(report), flush=True)
    print(f"report: {path}", flush=True)
    sys.exit(0 if report.get("ok") else 1)


def summary(report: dict[str, Any]) -> str:
    lines = [f"fault suite: {'PASSED' if report.get('ok') else 'FAILED'} in {report.get('total_s')} s"]
    if "tickets" in report:
        t = report["tickets"]
        lines.append(f"  tickets: {t['acknowledged']} of {t['posted']} acknowledged at {t['rate_per_s']}/s "
                     f"({t['status_changed']} opened and solved), {sum(t['retried_requests'].values())} requests retried")
    for fault in report.get("faults", []):
        lines.append(f"  {'ok ' if fault['ok'] else 'BAD'} {fault['kind']:<26} {fault['target']:<26} back "
                     f"{fault['back_s']} s, caught up {fault['caught_up_s']} s {fault['note']}")
    for name, check in report.get("checks", {}).items():
        details = {k: v for k, v in check.items() if k not in ("ok", "duplicated")}
        if check.get("duplicated"):  # the event types and offsets; the whole list is in the report
            details["duplicated"] = [f"{d['type']}@{d['topic']}[{d['records'][0]['partition']}]:"
                                     f"{','.join(str(r['offset']) for r in d['records'])}"
                                     for d in check["duplicated"][:10]]
        lines.append(f"  {'ok ' if check['ok'] else 'BAD'} {name}: {details}")
    if "error" in report:
        lines.append(f"  error: {report['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
