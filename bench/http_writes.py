"""Would writing a response in one system call save CPU? uvicorn's httptools protocol writes a
response's head and its body in two ``write`` calls. This compares it with the two protocols of
``bench/http_writes_protocols.py`` that write them as one: one uvicorn worker each (uvloop)
serving a small JSON answer, loaded by wrk in alternated rounds (a noisy neighbour hits all),
the server process's CPU time per request (/proc) and its requests per second.

Round 19 (docs/performance.md) measured both one-write protocols **more** expensive than the
stock one: the second ``write`` of a small body costs less than the Python that saves it.

Run: ``.venv/bin/python bench/http_writes.py [--rounds 6 --seconds 5 --connections 8]`` (needs
wrk: ``make wrk``; listens on 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

APP = '''
BODY = b'{"id": "7d0f1c3e-0000-4000-8000-000000000001", "status": "open", "subject": "' + b"x" * 120 + b'"}'
HEAD = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEAD})
    await send({"type": "http.response.body", "body": BODY})
'''

PROTOCOLS = {"httptools": "httptools", "held": "http_writes_protocols:HeldHeadProtocol",
             "coalescing": "http_writes_protocols:CoalescingHttpToolsProtocol"}
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def one_round(port: int, pid: int, seconds: int, connections: int) -> tuple[float, float]:
    """(CPU ms per request, requests per second) of one wrk run against ``port``."""
    before = cpu_seconds(pid)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True, timeout=seconds + 30).stdout
    used = cpu_seconds(pid) - before
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return used / requests * 1000, requests / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"http-writes-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "writes_app.py").write_text(APP)
    servers: dict[str, tuple[subprocess.Popen, int]] = {}
    try:
        for name, http in PROTOCOLS.items():
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "writes_app:app", "--host", "127.0.0.1", "--port", str(port),
                 "--loop", "uvloop", "--http", http, "--no-access-log", "--log-level", "warning"],
                cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                env=os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, (str(BENCH), os.environ.get("PYTHONPATH"))))})
            servers[name] = (proc, port)
        for proc, port in servers.values():
            wait_listening(port)
            one_round(port, proc.pid, 1, args.connections)  # warm-up
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in servers}
        for i in range(args.rounds):
            order = list(servers) if i % 2 == 0 else list(reversed(servers))
            for name in order:
                proc, port = servers[name]
                results[name].append(one_round(port, proc.pid, args.seconds, args.connections))
        print(f"{'protocol':<12} {'CPU ms/req (median)':>20} {'range':>16} {'req/s (median)':>15}")
        for name, rows in results.items():
            cpu = [c for c, _ in rows]
            rps = [r for _, r in rows]
            print(f"{name:<12} {statistics.median(cpu):>20.4f} {min(cpu):>7.4f}-{max(cpu):<8.4f} "
                  f"{statistics.median(rps):>15.0f}")
        base = statistics.median(c for c, _ in results["httptools"])
        for name in PROTOCOLS:
            if name != "httptools":
                print(f"{name} / httptools CPU per request: {statistics.median(c for c, _ in results[name]) / base:.3f}")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
