"""Load test of the CDS Hooks service, authentication on: patient-view calls from concurrent clients, loopback.

Starts ``postcart serve`` in its own process on 127.0.0.1 (a free port, a temporary SQLite feedback
database, a trusted-issuers file with a fresh ES384 key), warms it up, then for each client count runs that
many concurrent clients (threads, one ``httpx.Client`` each) sending the example bundle
(examples/fhir/lbcl-late-relapse-fit-donor.json) with a fresh hookInstance and a fresh signed JWT per call
(the JWTs are signed before the run, so the clock measures the server verifying them, not the client signing),
until either the request budget or the time budget is spent. Reports requests per second, latency median /
p95 / p99, and the errors; exits 1 if any call was not a 200 with cards.

    .venv/bin/python benchmarks/cds_load.py                     # 8 then 50 clients, <= 3000 calls, <= 30 s each
    .venv/bin/python benchmarks/cds_load.py --clients 8 --requests 5000 --seconds 60
    .venv/bin/python benchmarks/cds_load.py --workers 2             # one server process per core
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import jwt
import psutil
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fhir" / "lbcl-late-relapse-fit-donor.json"
SERVICE = "/cds-services/postcart-after-car-t"
ISSUER = "https://ehr.example/load-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _body(bundle: dict) -> dict:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/load-test", "patientId": "demo-lbcl-01"},
            "prefetch": {"record": bundle}}


def _tokens(key: ec.EllipticCurvePrivateKey, audience: str, count: int) -> list[str]:
    now = int(time.time())
    return [jwt.encode({"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 900, "jti": str(uuid.uuid4())},
                       key, algorithm="ES384", headers={"kid": "load-1", "typ": "JWT"}) for _ in range(count)]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="8,50", help="concurrent clients, one run per comma-separated value")
    parser.add_argument("--requests", type=int, default=3000, help="request budget per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="time budget per run")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (postcart serve --workers)")
    args = parser.parse_args()
    client_counts = [int(value) for value in str(args.clients).split(",")]

    bundle = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())), "kid": "load-1", "use": "sig"}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        issuers = Path(tmp) / "issuers.json"
        issuers.write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": {"keys": [jwk]}}]}), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        server = subprocess.Popen(
            [sys.executable, "-m", "postcart", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--database-url", f"sqlite:///{tmp}/load.sqlite3", "--trusted-issuers", str(issuers),
             "--public-url", base, *(["--workers", str(args.workers)] if args.workers > 1 else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(base + "/cds-services", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        print("the server did not start", file=sys.stderr)
                        return 1
                    time.sleep(0.2)
            with httpx.Client(base_url=base, timeout=30) as warm:
                for token in _tokens(key, base + SERVICE, 30):
                    warm.post(SERVICE, json=_body(bundle), headers={"Authorization": f"Bearer {token}"}).raise_for_status()
            for clients in client_counts:
                failed |= _run(base, bundle, _tokens(key, base + SERVICE, args.requests), clients, args.seconds,
                               psutil.Process(server.pid))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=5)
    return 1 if failed else 0


def _cpu_seconds(process: psutil.Process) -> float:
    """CPU time (user + system) of the server and its worker processes so far."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _run(base: str, bundle: dict, tokens: list[str], clients: int, seconds: float, server: psutil.Process) -> bool:
    """One measured run; prints its figures and returns whether any call failed."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    budget = iter(tokens)
    stop_at = time.monotonic() + seconds

    def client() -> None:
        with httpx.Client(base_url=base, timeout=30) as http:
            while time.monotonic() < stop_at:
                with lock:
                    token = next(budget, None)
                if token is None:
                    return
                body = _body(bundle)
                started = time.perf_counter()
                try:
                    response = http.post(SERVICE, json=body, headers={"Authorization": f"Bearer {token}"})
                    ok = response.status_code == 200 and bool(response.json().get("cards"))
                    problem = None if ok else f"HTTP {response.status_code}"
                except httpx.HTTPError as error:
                    problem = type(error).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if problem:
                        errors.append(problem)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = _cpu_seconds(server)
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cpu = _cpu_seconds(server) - cpu_before
    count = len(latencies)
    print(f"patient-view load test: {clients} concurrent clients, loopback, authentication on (ES384 JWT per "
          f"call), example bundle ({len(bundle['entry'])} resources), cards stored in SQLite off the hook path")
    print(f"requests      {count} in {wall:.2f} s")
    print(f"throughput    {count / wall:.1f} requests/s")
    if latencies:
        print(f"latency       median {statistics.median(latencies) * 1000:.1f} ms, "
              f"p95 {_percentile(latencies, 0.95) * 1000:.1f} ms, p99 {_percentile(latencies, 0.99) * 1000:.1f} ms")
    if count:
        # what the server spends per call, whatever else runs on the machine: the capacity of one core
        print(f"server CPU    {cpu / count * 1000:.2f} ms per call (one core: {count / cpu:.0f} calls/s at most); "
              f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"errors        {len(errors)}" + (f" ({', '.join(sorted(set(errors)))})" if errors else ""))
    return bool(errors) or not count


if __name__ == "__main__":
    sys.exit(main())
