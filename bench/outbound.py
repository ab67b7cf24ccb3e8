"""Outbound sinks for `make bench`: a real SMTP server and a webhook receiver for notify-svc.

Both run on 127.0.0.1 in **one subprocess of their own** (``python -m bench.outbound``), so the
harness measures their CPU apart from the stack's: it is reported next to the outbound figures
and never counted in the pipeline's. Each sink has a **gate**. While it is closed, the SMTP
server holds every new session at its EHLO answer and the receiver holds every request before
reading it, so notify-svc's dispatcher cannot get rid of anything: the harness queues its work
(acknowledgements, webhook deliveries) in that time, then opens the gate and times the dispatcher
emptying a full queue — its own rate, not the rate at which the queue was filled.

The harness talks to the process over a small control API on the receiver's port
(``/_bench/...``): gates, receipt counts and times, and a sample of the webhook requests as
received, whose signatures the harness then checks with the Standard Webhooks library.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email.parser
import email.policy
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: webhook requests kept as received (headers + body) for the signature check
MAX_KEPT_REQUESTS = 5000
WEBHOOK_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
#: how long the harness waits for the sinks' process to listen
START_TIMEOUT_S = 30.0


# ---- pure helpers ------------------------------------------------------------------------------

def per_second(count: int, first: float | None, last: float | None) -> float | None:
    """Throughput between the first and the last receipt: ``count - 1`` intervals in that time.

    None when it cannot be told (fewer than two receipts, or all in the same instant)."""
    if count < 2 or first is None or last is None or last <= first:
        return None
    return (count - 1) / (last - first)


def spread(items: Sequence[Any], k: int) -> list[Any]:
    """``k`` items spread evenly over ``items`` (first and last included), in order; all if fewer."""
    n = len(items)
    if k <= 0 or n == 0:
        return []
    if n <= k:
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (n - 1) / (k - 1))] for i in range(k)]


def receipt_stats(times: Sequence[float], *, duplicates: int, missing_id: int) -> dict[str, Any]:
    return {"count": len(times), "first": times[0] if times else None, "last": times[-1] if times else None,
            "duplicates": duplicates, "missing_id": missing_id}


def verify_samples(secret: str, samples: Sequence[Mapping[str, Any]]) -> tuple[int, list[str]]:
    """(verified, problems) for webhook requests as received.

    With the Standard Webhooks reference library when it is installed (what a receiver would
    use: signature and timestamp tolerance), else by checking the three headers are there."""
    try:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError
    except ImportError:  # pragma: no cover - the dev requirements install it
        Webhook = None  # type: ignore[assignment]
    problems: list[str] = []
    verified = 0
    for sample in samples:
        headers = dict(sample["headers"])
        body = base64.b64decode(sample["body_b64"])
        if Webhook is None:
            if all(headers.get(h) for h in WEBHOOK_HEADERS):
                verified += 1
            else:
                problems.append(f"missing headers in {headers.get('webhook-id')}")
            continue
        try:
            Webhook(secret).verify(body, headers)
            verified += 1
        except WebhookVerificationError as exc:
            problems.append(f"{headers.get('webhook-id')}: {exc}")
    return verified, problems


# ---- the sinks' process ------------------------------------------------------------------------

class Receipts:
    """What one sink received: receipt times, ids seen (to count duplicates), kept requests."""

    def __init__(self, *, keep: int = 0) -> None:
        self.keep = keep
        self.reset()

    def reset(self) -> None:
        self.times: list[float] = []
        self.ids: set[str] = set()
        self.duplicates = 0
        self.missing_id = 0
        self.kept: list[dict[str, Any]] = []

    def add(self, ident: str | None, kept: dict[str, Any] | None = None) -> None:
        self.times.append(time.time())
        if not ident:
            self.missing_id += 1
        elif ident in self.ids:
            self.duplicates += 1
        else:
            self.ids.add(ident)
        if kept is not None and len(self.kept) < self.keep:
            self.kept.append(kept)

    def stats(self) -> dict[str, Any]:
        return receipt_stats(self.times, duplicates=self.duplicates, missing_id=self.missing_id)


class Gate:
    """Open by default; while closed, whoever waits on it is held."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._open.set()

    def set(self, opened: bool) -> None:
        if opened:
            self._open.set()
        else:
            self._open.clear()

    async def wait(self) -> None:
        await self._open.wait()


_headers_only = email.parser.BytesHeaderParser(policy=email.policy.compat32)


class SmtpSink:
    """aiosmtpd handler: accepts every message, notes when and its Message-ID."""

    def __init__(self, gate: Gate, receipts: Receipts) -> None:
        self.gate = gate
        self.receipts = receipts

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        await self.gate.wait()
        session.host_name = hostname  # the 5-argument hook takes over what aiosmtpd would do
        return responses

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message_id = _headers_only.parsebytes(envelope.original_content or b"").get("Message-ID")
        self.receipts.add(str(message_id).strip() if message_id else None)
        return "250 Message accepted for delivery"


def build_app(gates: Mapping[str, Gate], receipts: Mapping[str, Receipts]):
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await gates["webhook"].wait()
        body = await request.read()
        headers = {h: request.headers.get(h, "") for h in WEBHOOK_HEADERS}
        receipts["webhook"].add(headers["webhook-id"] or None,
                                {"headers": headers, "body_b64": base64.b64encode(body).decode()})
        return web.Response(status=204)

    async def gate(request: web.Request) -> web.Response:
        data = await request.json()
        gates[data["name"]].set(bool(data["open"]))
        return web.json_response({"name": data["name"], "open": bool(data["open"])})

    async def reset(request: web.Request) -> web.Response:
        receipts[request.query["name"]].reset()
        return web.json_response({})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(receipts[request.query["name"]].stats())

    async def samples(request: web.Request) -> web.Response:
        k = int(request.query.get("k", "20"))
        return web.json_response(spread(receipts["webhook"].kept, k))

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/_bench/gate", gate)
    app.router.add_post("/_bench/reset", reset)
    app.router.add_get("/_bench/stats", stats)
    app.router.add_get("/_bench/samples", samples)
    app.router.add_get("/_bench/health", health)
    return app


async def serve(smtp_port: int, http_port: int) -> None:
    from aiohttp import web
    from aiosmtpd.smtp import SMTP

    gates = {"smtp": Gate(), "webhook": Gate()}
    receipts = {"smtp": Receipts(), "webhook": Receipts(keep=MAX_KEPT_REQUESTS)}
    loop = asyncio.get_running_loop()
    handler = SmtpSink(gates["smtp"], receipts["smtp"])
    # hostname given: aiosmtpd would otherwise ask DNS for this machine's name
    smtp = await loop.create_server(lambda: SMTP(handler, hostname="127.0.0.1", loop=loop), "127.0.0.1", smtp_port)
    runner = web.AppRunner(build_app(gates, receipts), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        smtp.close()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbound", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    asyncio.run(serve(args.smtp_port, args.http_port))


# ---- the harness's side ------------------------------------------------------------------------

class OutboundSinks:
    """Starts, drives and stops the sinks' process (``python -m bench.outbound``)."""

    def __init__(self, *, smtp_port: int, http_port: int, log_path: Path, cwd: Path) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.log_path = log_path
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.smtp_port}?starttls=false"

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/hook"

    @property
    def _control(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/_bench"

    def start(self, preexec_fn=None) -> subprocess.Popen:
        from helpdesk_common.devstack import wait_http_ok, wait_tcp

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.outbound", "--smtp-port", str(self.smtp_port),
             "--http-port", str(self.http_port)],
            cwd=self.cwd, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=preexec_fn,
        )
        wait_http_ok(f"{self._control}/health", START_TIMEOUT_S, self.proc)
        wait_tcp("127.0.0.1", self.smtp_port, START_TIMEOUT_S)
        return self.proc

    def _call(self, method: str, path: str, **kwargs) -> Any:
        import httpx

        r = httpx.request(method, f"{self._control}{path}", timeout=10, **kwargs)
        r.raise_for_status()
        return r.json()

    def gate(self, name: str, opened: bool) -> None:
        self._call("POST", "/gate", json={"name": name, "open": opened})

    def reset(self, name: str) -> None:
        self._call("POST", "/reset", params={"name": name})

    def stats(self, name: str) -> dict[str, Any]:
        return self._call("GET", "/stats", params={"name": name})

    def samples(self, k: int) -> list[dict[str, Any]]:
        return self._call("GET", "/samples", params={"k": k})

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class NotifyDb:
    """What notify-svc's database says about deliveries (the dispatcher's view)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn

    async def _fetchrow(self, query: str, *args) -> Any:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            return await conn.fetchrow(query, *args)
        finally:
            await conn.close()

    async def now(self):
        return (await self._fetchrow("SELECT now() AS now"))["now"]

    async def created_since(self, kind: str, since) -> int:
        return (await self._fetchrow("SELECT count(*) AS n FROM deliveries WHERE kind = $1 AND created_at >= $2",
                                     kind, since))["n"]

    async def pending(self) -> int:
        """Deliveries waiting or in flight, retries not yet due included."""
        return (await self._fetchrow("SELECT count(*) AS n FROM deliveries WHERE status IN ('queued', 'sending')"))["n"]

    async def sent_between(self, kind: str, since) -> dict[str, Any]:
        """Rows of ``kind`` recorded as sent since ``since``: count, first and last ``sent_at``
        (unix seconds), and how many needed more than one attempt."""
        row = await self._fetchrow(
            "SELECT count(*) AS n, extract(epoch FROM min(sent_at)) AS first, "
            "extract(epoch FROM max(sent_at)) AS last, count(*) FILTER (WHERE attempts > 1) AS retried "
            "FROM deliveries WHERE kind = $1 AND status = 'sent' AND sent_at >= $2", kind, since)
        return {"count": row["n"], "first": None if row["first"] is None else float(row["first"]),
                "last": None if row["last"] is None else float(row["last"]), "retried": row["retried"]}

    async def not_sent(self, kind: str, since) -> int:
        """Rows of ``kind`` created since ``since`` that are not ``sent`` (failed, undeliverable,
        still queued): the harness's own sinks never refuse, so any is a defect of the run."""
        return (await self._fetchrow("SELECT count(*) AS n FROM deliveries WHERE kind = $1 AND created_at >= $2 "
                                     "AND status <> 'sent'", kind, since))["n"]


if __name__ == "__main__":
    main()
