"""Phone benchmark: concurrent Twilio calls in one server process, mark-to-media latency.

Three processes: the local engine (``cantata serve``, standing in for the
model), the phone server (``serve``), and the simulated callers (this one),
N at a time, their starts spread over a second. Each caller listens to the agent's
greeting (about eight seconds of G.711, streamed by the engine faster than
real time) while it sends its own 20 ms of silence every 20 ms, as Twilio
does. The endpoint keeps at most its lead of audio unheard at the caller, so
every mark the caller acknowledges releases the next frame: the time from a
mark's echo leaving the caller to the next ``media`` frame arriving is the
endpoint's reaction time under load, **mark-to-media**. Its p50, p99 and max
are reported per run, over every call of the run; a run repeats ``--repeat``
times and the summary gives the median and the spread of the p99s::

    python tests/benchmarks/bench_phone.py [--calls 10 25 50] [--repeat 3] [--lead-ms 200]

No peer framework is measured beside it: none of the ones the issue names
ships a Media Streams endpoint that runs offline. Both processes share a
noisy machine; the load of other processes is printed with each run.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial

import trio

from framework.telephony import Media, PhoneAgent, PhoneServer, dial, serve_phone

TOKEN = "bench-token"
GREETING = " ".join(["Thanks for calling the benchmark line, please hold on."] * 3)
RULES = f'greeting = "{GREETING}"\nfallback = "Sorry."\n'


class Agent(PhoneAgent):
    instructions = "Benchmark."
    greeting = GREETING


async def serve(engine_url: str, lead_ms: int) -> None:
    server = PhoneServer(
        agent=Agent, url=engine_url, twilio_auth_token=TOKEN, max_calls=1000, lead_ms=lead_ms
    )
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(serve_phone, server, port=0))
        print(url, flush=True)


async def one_call(url: str, start_at: float, listen_s: float, out: list[float]) -> None:
    await trio.sleep_until(start_at)
    async with dial(url, auth_token=TOKEN) as caller:
        acked: list[float] = []

        def on_mark(name: str, at: float) -> None:
            acked.append(at)

        def on_media(message: Media, at: float) -> None:
            if acked:
                out.append(at - acked.pop())
                acked.clear()

        caller.on_mark = on_mark
        caller.on_media = on_media
        await trio.sleep(listen_s)


async def run(url: str, calls: int, listen_s: float) -> list[float]:
    latencies: list[float] = []
    begin = trio.current_time() + 0.5
    async with trio.open_nursery() as nursery:
        for n in range(calls):
            nursery.start_soon(one_call, url, begin + n / calls, listen_s, latencies)
    return latencies


def wait_listening(port: int, timeout_s: float = 30.0) -> None:
    """Returns once something accepts connections on the loopback ``port``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def others_load(seconds: float) -> float:
    """Percent of a core other processes used, from /proc/stat over ``seconds``."""

    def busy() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    return 100.0 * (os.cpu_count() or 1) * (b1 - b0) / max(1, t1 - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="bench", choices=["bench", "serve"])
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--listen-s", type=float, default=8.0)
    parser.add_argument("--lead-ms", type=int, default=200)
    parser.add_argument("--engine-port", type=int, default=8799)
    parser.add_argument("--engine-url", help="serve: the engine's Realtime URL")
    args = parser.parse_args()
    if args.mode == "serve":
        trio.run(serve, args.engine_url, args.lead_ms)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as rules:
        rules.write(RULES)
    engine = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "framework.apps.cli",
            "serve",
            "--port",
            str(args.engine_port),
            "--rules",
            rules.name,
        ],
        stdout=subprocess.DEVNULL,
    )
    engine_url = f"ws://127.0.0.1:{args.engine_port}/v1/realtime"
    wait_listening(args.engine_port)
    server = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "serve",
            "--lead-ms",
            str(args.lead_ms),
            "--engine-url",
            engine_url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(
            f"phone server {url} (pid {server.pid}), engine pid {engine.pid}, "
            f"lead {args.lead_ms} ms"
        )
        for calls in args.calls:
            p99s = []
            for attempt in range(args.repeat):
                load = others_load(1.0)
                latencies = trio.run(run, url, calls, args.listen_s)
                ms = [x * 1000 for x in latencies]
                p99 = quantile(ms, 0.99)
                p99s.append(p99)
                print(
                    f"calls={calls:3d} run={attempt + 1} pairs={len(ms):6d} "
                    f"p50={quantile(ms, 0.5):6.2f} ms p99={p99:6.2f} ms max={max(ms):7.2f} ms "
                    f"(others {load:.0f}% of a core)"
                )
            print(
                f"calls={calls:3d} p99 median {statistics.median(p99s):.2f} ms, "
                f"spread {min(p99s):.2f}-{max(p99s):.2f} ms over {args.repeat} runs"
            )
    finally:
        for process in (server, engine):
            process.terminate()
            process.wait()
        os.unlink(rules.name)


if __name__ == "__main__":
    main()
