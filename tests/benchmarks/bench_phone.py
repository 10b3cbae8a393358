"""Phone benchmark: concurrent Twilio calls in one server process, mark-to-media latency.

The phone server and the local engine behind it run in one process (``serve``,
started by the benchmark); the simulated callers run in this one, N at a
time, their starts spread over a second. Each caller listens to the agent's
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
import statistics
import subprocess
import sys
import time
from functools import partial

import trio

from framework.engine import Engine, Rules, open_engine
from framework.telephony import Media, PhoneAgent, PhoneServer, dial, serve_phone

TOKEN = "bench-token"
GREETING = " ".join(["Thanks for calling the benchmark line, please hold on."] * 3)
RULES = f'greeting = "{GREETING}"\nfallback = "Sorry."\n'


class Agent(PhoneAgent):
    instructions = "Benchmark."
    greeting = GREETING


async def serve(port: int, lead_ms: int) -> None:
    engine = Engine(rules=Rules.from_toml(RULES))
    async with open_engine(engine) as running:
        server = PhoneServer(
            agent=Agent, url=running.url, twilio_auth_token=TOKEN, max_calls=1000, lead_ms=lead_ms
        )
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve_phone, server, port=port))
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
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    if args.mode == "serve":
        trio.run(serve, args.port, args.lead_ms)
        return
    server = subprocess.Popen(
        [sys.executable, __file__, "serve", "--lead-ms", str(args.lead_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        print(f"phone server {url} (pid {server.pid}), lead {args.lead_ms} ms")
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
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
