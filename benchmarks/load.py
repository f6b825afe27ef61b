"""Load test of ``camid serve`` over loopback: latency, throughput, errors and server memory.

Starts uvicorn (``serve.app:app_from_env``) in a subprocess on 127.0.0.1 with a free port, sends
12-MP phone-like JPEGs (~4 MB each) to ``POST /v1/classify`` from 1, 4 and 16 concurrent clients,
and prints p50/p99 latency, requests/s and errors per level, plus the server's RSS before and after
all requests (a growing RSS means a leak). Loopback only; nothing leaves the machine. Each client
connects from its own loopback address (127.0.0.10, .11, ...), as citizens do from their own
addresses, so per-client limits apply to each; the classify rate limit is lifted for the run.

With ``--attack N`` it runs the attack scenario instead: ``--attack-clients`` normal clients
send ``--requests`` photos, first alone, then while N connections from ``--attack-addresses``
other loopback addresses (127.0.0.2, ...) upload photos one byte a second and reconnect whenever
they are cut off; it prints the normal clients' p50/p99 and errors in both phases and what the
slow connections got back.

    nice .venv/bin/python benchmarks/load.py [--model M.onnx] [--requests 5000] [--levels 1,4,16]
    nice .venv/bin/python benchmarks/load.py --attack 24 [--attack-clients 4] [--requests 400]

Without ``--model`` the release model is used; ``--random-model`` exports a random-init
efficientnet_lite0 at 224 px first (needs the train extra; torch runs only in this exporter, never
in the server).
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def phone_jpeg(seed: int, size: tuple[int, int] = (4000, 3000), quality: int = 85) -> bytes:
    """A photo-like 12-MP JPEG (~4 MB): smooth colour fields, fine texture and sensor noise."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)
    grain = rng.integers(0, 256, (h // 3, w // 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(grain).resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    img = base * 0.8 + (texture[..., None] - 128) * 0.4 + rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def multipart(photo: bytes) -> tuple[bytes, str]:
    """A ready-made ``multipart/form-data`` body with one ``image`` part, and its content type."""
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + photo + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def export_random_model(out: Path) -> Path:
    """A random-init efficientnet_lite0 at 224 px, exported with camid's exporter (torch here only)."""
    import torch

    from data.preprocess import ResizeRule
    from model.checkpoint import CheckpointMeta
    from model.export import export_onnx
    from model.factory import create_model

    labels = ("huawei_ipc6625_z30", "huawei_ipc6225_vrz_es", "other_camera", "no_camera")
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0", num_classes=len(labels), pretrained=None).eval()
    meta = CheckpointMeta(
        arch="efficientnet_lite0", labels=labels, resize=ResizeRule(size=224), version="random"
    )
    export_onnx((model, meta), out, name="camid-random-lite0", n_random=2)
    return out


@dataclass
class Server:
    """uvicorn running camid in a subprocess on a free loopback port."""

    model: Path
    data_dir: Path
    workers: int = 1
    queue_size: int = 32
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        env = {
            **os.environ,
            "CAMID_MODEL_PATH": str(self.model),
            "CAMID_DATA_DIR": str(self.data_dir),
            "CAMID_QUEUE_SIZE": str(self.queue_size),
            "CAMID_LOG_LEVEL": "warning",
            "CAMID_WORKERS": str(self.workers),
            "CAMID_CLASSIFY_PER_MINUTE": "1000000",
        }
        cmd = [sys.executable, "-m", "serve.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(cmd, env=env, cwd=REPO)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server not ready after 120 s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)


@dataclass
class Level:
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rss_after_mb: float = float("nan")


def run_level(url: str, bodies: list[tuple[bytes, str]], clients: int, requests: int) -> Level:
    """``requests`` POSTs from ``clients`` threads, each with its own keep-alive connection and
    loopback address (127.0.0.10 + i)."""
    level, lock, counter = Level(clients), threading.Lock(), iter(range(requests))

    def client(n: int) -> None:
        transport = httpx.HTTPTransport(local_address=f"127.0.0.{10 + n % 240}")
        with httpx.Client(base_url=url, timeout=120, transport=transport) as http:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                body, ctype = bodies[i % len(bodies)]
                start = time.perf_counter()
                try:
                    r = http.post("/v1/classify", content=body, headers={"content-type": ctype})
                    outcome = "ok" if r.status_code == 200 else str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                took = time.perf_counter() - start
                with lock:
                    if outcome == "ok":
                        level.latencies.append(took)
                    else:
                        level.errors[outcome] = level.errors.get(outcome, 0) + 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    level.seconds = time.perf_counter() - start
    return level


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return float(np.percentile(values, q))


def report(levels: list[Level], rss: tuple[float, float], photo_mb: float, total: int) -> str:
    rows = [
        f"photos: 12 MP JPEG, {photo_mb:.1f} MB mean; {total} requests in all",
        f"{'clients':>7} {'requests':>8} {'ok':>6} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}"
        f" {'RSS MB':>7}",
    ]
    for lv in levels:
        n_err = sum(lv.errors.values())
        n = len(lv.latencies) + n_err
        rows.append(
            f"{lv.clients:>7} {n:>8} {len(lv.latencies):>6} {n_err:>7} "
            f"{percentile(lv.latencies, 50) * 1000:>8.0f} {percentile(lv.latencies, 99) * 1000:>8.0f} "
            f"{n / lv.seconds:>7.2f} {lv.rss_after_mb:>7.0f}" + (f"  {lv.errors}" if lv.errors else "")
        )
    rows.append(f"server RSS: {rss[0]:.0f} MB before, {rss[1]:.0f} MB after ({rss[1] - rss[0]:+.0f} MB)")
    return "\n".join(rows)


@dataclass
class Attack:
    """Slow uploads: ``connections`` sockets from ``addresses`` loopback addresses, one byte a second."""

    port: int
    connections: int
    addresses: int
    answers: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _connection(self, address: str) -> None:
        """Upload a 4 MB photo at 1 byte/s until the server answers; reconnect a second later."""
        head = (
            f"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 4000000\r\n\r\n"
            '--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8'
        ).encode("latin-1")
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), 5, (address, 0)) as s:
                    s.sendall(head)
                    s.settimeout(1.0)
                    status = self._drip(s)
            except OSError:
                status = 0  # connection refused or reset
            with self._lock:
                self.answers[status] = self.answers.get(status, 0) + 1
            self.stop.wait(1.0)

    def _drip(self, s: socket.socket) -> int:
        while not self.stop.is_set():
            try:
                answer = s.recv(4096)
            except TimeoutError:
                s.sendall(b"\x00")
                continue
            return int(answer.split(b" ", 2)[1]) if answer else 0
        return -1  # still uploading when the scenario ended

    def __enter__(self) -> Attack:
        for i in range(self.connections):
            address = f"127.0.0.{2 + i % self.addresses}"
            self.threads.append(threading.Thread(target=self._connection, args=(address,), daemon=True))
            self.threads[-1].start()
        time.sleep(3.0)  # every connection has sent its headers and is dripping
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)


def attack_report(calm: Level, attacked: Level, attack: Attack, photo_mb: float) -> str:
    names = {-1: "still uploading at the end", 0: "closed", 408: "408 too slow", 429: "429 too many uploads"}
    answers = ", ".join(f"{names.get(k, str(k))}: {v}" for k, v in sorted(attack.answers.items()))
    rows = [
        f"photos: 12 MP JPEG, {photo_mb:.1f} MB mean; "
        f"{calm.clients} normal clients, each from its own address",
        f"attack: {attack.connections} connections from {attack.addresses} addresses sending 1 byte/s, "
        "reconnecting 1 s after each answer",
        f"{'scenario':<16} {'requests':>8} {'ok':>6} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7}",
    ]
    for name, lv in (("normal only", calm), ("normal + attack", attacked)):
        n_err = sum(lv.errors.values())
        rows.append(
            f"{name:<16} {len(lv.latencies) + n_err:>8} {len(lv.latencies):>6} {n_err:>7} "
            f"{percentile(lv.latencies, 50) * 1000:>8.0f} {percentile(lv.latencies, 99) * 1000:>8.0f} "
            f"{(len(lv.latencies) + n_err) / lv.seconds:>7.2f}" + (f"  {lv.errors}" if lv.errors else "")
        )
    p99 = percentile(attacked.latencies, 99) / percentile(calm.latencies, 99)
    rows.append(f"p99 under attack / p99 alone: {p99:.2f}x; slow connections got: {answers}")
    return "\n".join(rows)


def _merge(into: Level, part: Level) -> None:
    into.latencies += part.latencies
    into.seconds += part.seconds
    for k, v in part.errors.items():
        into.errors[k] = into.errors.get(k, 0) + v


def run_attack(args: argparse.Namespace, model: Path, tmp: str, bodies: list[tuple[bytes, str]]) -> None:
    """The attack scenario, on the server's default queue (1 inference thread + 8 waiting); prints a table.

    The phases alternate (alone, attacked, alone, attacked, ...; ``--rounds`` of each) so that
    other load on a shared machine weighs on both alike.
    """
    clients, rounds = args.attack_clients, max(1, args.rounds)
    per_round = max(clients, args.requests // rounds)
    calm, attacked = Level(clients), Level(clients)
    totals = Attack(0, args.attack, args.attack_addresses)
    with Server(model, Path(tmp) / "var", workers=args.workers, queue_size=8) as server:
        run_level(server.url, bodies, clients, max(args.warmup, clients))
        for r in range(rounds):
            print(f"round {r + 1}/{rounds}: {per_round} requests alone, then during the attack", flush=True)
            _merge(calm, run_level(server.url, bodies, clients, per_round))
            with Attack(server.port, args.attack, args.attack_addresses) as attack:
                _merge(attacked, run_level(server.url, bodies, clients, per_round))
            for k, v in attack.answers.items():
                totals.answers[k] = totals.answers.get(k, 0) + v
    mean_mb = statistics.mean(len(b) for b, _ in bodies) / 1e6
    print(attack_report(calm, attacked, totals, mean_mb))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="ONNX model (default: the release model)")
    p.add_argument("--random-model", action="store_true", help="export a random efficientnet_lite0 first")
    p.add_argument("--requests", type=int, default=5000, help="total requests, split over the levels")
    p.add_argument("--levels", default="1,4,16", help="concurrent clients per level")
    p.add_argument("--photos", type=int, default=4, help="distinct 12-MP photos to cycle through")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument(
        "--warmup",
        type=int,
        default=64,
        help="requests at the highest concurrency before the RSS baseline, so the baseline holds the "
        "peak working set of concurrent uploads and any growth after it is a leak",
    )
    p.add_argument("--save-model", type=Path, help="with --random-model: keep the exported file here")
    p.add_argument("--attack", type=int, default=0, help="run the attack scenario: this many slow uploads")
    p.add_argument("--attack-clients", type=int, default=4, help="normal clients in the attack scenario")
    p.add_argument("--attack-addresses", type=int, default=3, help="loopback addresses the attack comes from")
    p.add_argument("--rounds", type=int, default=3, help="attack scenario: alternations of the two phases")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    levels = [int(x) for x in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="camid-load-") as tmp:
        model = args.model
        if args.random_model:
            model = export_random_model(args.save_model or Path(tmp) / "random-lite0.onnx")
        if model is None:
            from serve.engine import default_model_path

            model = default_model_path()
        if not Path(model).is_file():
            print(f"no model at {model}: pass --model PATH or --random-model")
            return 2
        print(f"generating {args.photos} photos of 12 MP ...", flush=True)
        photos = [phone_jpeg(seed) for seed in range(args.photos)]
        bodies = [multipart(p) for p in photos]
        if args.attack:
            run_attack(args, Path(model), tmp, bodies)
            return 0
        with Server(
            Path(model), Path(tmp) / "var", workers=args.workers, queue_size=max(levels) * 2
        ) as server:
            assert server.proc is not None
            run_level(server.url, bodies, max(levels), max(args.warmup, max(levels)))
            before = rss_mb(server.proc.pid)
            results = []
            for i, clients in enumerate(levels):
                n = args.requests // len(levels) + (i < args.requests % len(levels))
                print(f"{clients} clients, {n} requests ...", flush=True)
                results.append(run_level(server.url, bodies, clients, max(n, clients)))
                results[-1].rss_after_mb = rss_mb(server.proc.pid)
            after = rss_mb(server.proc.pid)
    mean_mb = statistics.mean(len(p) for p in photos) / 1e6
    print(
        report(
            results, (before, after), mean_mb, sum(len(r.latencies) + sum(r.errors.values()) for r in results)
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
