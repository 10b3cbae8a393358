"""The whole comparison in one run: Cantata beside its peers and its floors.

Each part runs the existing benchmark it names, ``--repeat`` times, and
reports medians with their spread (min..max over the repeats) and the
machine's 1-minute load average while it ran (the machine is shared):

* **parse**: ``bench_protocol.py``: events/s of ``parse_server_event`` beside
  the official ``openai`` SDK's ``parse_event`` and ``orjson.loads`` alone;
* **latency**: the time between a tool call's
  ``response.function_call_arguments.done`` arriving and its
  ``function_call_output`` leaving, Cantata (``bench_runtime.py latency``,
  loopback) beside the Agents SDK (``_agents_sdk_client.py --latency``), the
  same stamps on the same engine process;
* **cpu** and **memory**: ``bench_runtime.py cpu``: client CPU per voice
  session and minute of audio, N sessions in one process paced by one timer,
  Cantata (default framing and ``framing="websockets"``) beside the Agents
  SDK (with its permessage-deflate offer as shipped, and with none) and bare
  trio-websocket (the floor); the same runs give each client's resident
  memory per session, idle (connected, configured) and active (at the end
  of the audio);
* **engine**: ``bench_engine.py``: the largest number of real-time voice
  sessions one engine process holds at p99 < 50 ms, and with ``--workers 2``.

``--write-readme`` replaces the table between the README's
``<!-- compare:begin -->`` and ``<!-- compare:end -->`` markers::

    python tests/benchmarks/compare.py [--repeat 3] [--quick] [--parts parse latency cpu engine]
        [--sessions 10 50] [--write-readme]

The Agents SDK is a benchmark-only dependency: ``.venv/bin/pip install openai-agents``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import bench_protocol
import bench_runtime
import numpy as np
import trio

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
README = REPO / "README.md"
BEGIN, END = "<!-- compare:begin -->", "<!-- compare:end -->"


def load() -> float:
    return os.getloadavg()[0]


class Figures:
    """Repeated measurements of one quantity, with the load average of each."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.loads: list[float] = []

    def add(self, value: float) -> None:
        self.values.append(value)
        self.loads.append(load())

    @property
    def median(self) -> float:
        return float(np.median(self.values)) if self.values else float("nan")

    def spread(self, fmt: str = "{:.3g}") -> str:
        if not self.values:
            return "n/a"
        low, high = min(self.values), max(self.values)
        return fmt.format(low) if low == high else f"{fmt.format(low)}-{fmt.format(high)}"

    def load_range(self) -> str:
        return f"{min(self.loads):.2f}-{max(self.loads):.2f}" if self.loads else "n/a"


def ratios(mine: Figures, theirs: Figures) -> Figures:
    """Run-by-run ratios (the runs of one repeat were made side by side)."""
    ratio = Figures()
    for a, b, la, lb in zip(mine.values, theirs.values, mine.loads, theirs.loads, strict=False):
        ratio.values.append(a / b)
        ratio.loads.append(max(la, lb))
    return ratio


Row = tuple[str, str, str, str, str]
"""benchmark, Cantata, peer or floor, ratio, load average."""


# --- parse ------------------------------------------------------------------------------


def parse_part(args: argparse.Namespace) -> list[Row]:
    rates: dict[str, Figures] = {}
    for _ in range(args.repeat):
        for name, rate in bench_protocol.run(args.parse_seconds).items():
            rates.setdefault(name, Figures()).add(rate)
        print(f"parse: {', '.join(f'{k} {v.values[-1]:,.0f}/s' for k, v in rates.items())}")
    cantata, sdk, floor = rates["cantata"], rates["openai-sdk"], rates["orjson-floor"]
    per_s = "{:,.0f}"
    vs_sdk, vs_floor = ratios(cantata, sdk), ratios(floor, cantata)
    return [
        (
            "parse a voice session's server events (events/s, `bench_protocol.py`)",
            cantata.spread(per_s),
            f"openai SDK `parse_event`: {sdk.spread(per_s)}",
            f"**{vs_sdk.median:.0f}x** the SDK ({vs_sdk.spread('{:.0f}')})",
            cantata.load_range(),
        ),
        (
            "same, beside `orjson.loads` alone (the floor)",
            cantata.spread(per_s),
            f"{floor.spread(per_s)}",
            f"within **{vs_floor.median:.1f}x** of the floor ({vs_floor.spread('{:.1f}')})",
            cantata.load_range(),
        ),
    ]


# --- tool latency ---------------------------------------------------------------------


def latency_part(args: argparse.Namespace) -> list[Row]:
    rules = Path(tempfile.mkdtemp()) / "ping.toml"
    rules.write_text(bench_runtime.PING_RULES)
    serve = ["-m", "framework.apps.cli", "serve", "--port", "0", "--rules", str(rules)]
    proc, url = bench_runtime.start_engine(serve)
    p50 = {"cantata": Figures(), "agents-sdk": Figures()}
    p99 = {"cantata": Figures(), "agents-sdk": Figures()}
    try:
        for _ in range(args.repeat):
            us, _ = trio.run(bench_runtime.measure_latency, "loopback", args.latency_turns, 20, url)
            sdk = subprocess.run(
                [
                    sys.executable,
                    str(HERE / "_agents_sdk_client.py"),
                    f"--url={url}",
                    "--latency",
                    f"--turns={args.latency_turns}",
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=120 + args.latency_turns,
                check=True,
            )
            theirs = np.array(json.loads(sdk.stdout.strip().splitlines()[-1])["us"])
            for name, values in (("cantata", us), ("agents-sdk", theirs)):
                p50[name].add(float(np.percentile(values, 50)))
                p99[name].add(float(np.percentile(values, 99)))
            print(
                f"latency: cantata p50 {p50['cantata'].values[-1]:.0f} / p99 "
                f"{p99['cantata'].values[-1]:.0f} us; agents-sdk p50 "
                f"{p50['agents-sdk'].values[-1]:.0f} / p99 {p99['agents-sdk'].values[-1]:.0f} us"
            )
    finally:
        bench_runtime.stop_engine(proc)
    faster50 = ratios(p50["agents-sdk"], p50["cantata"])
    faster99 = ratios(p99["agents-sdk"], p99["cantata"])
    us = "{:.0f}"
    return [
        (
            "tool call: `function_call_arguments.done` in to `function_call_output` out, "
            f"engine in another process ({args.latency_turns} calls per run)",
            f"p50 {p50['cantata'].spread(us)} µs, p99 {p99['cantata'].spread(us)} µs",
            f"Agents SDK: p50 {p50['agents-sdk'].spread(us)} µs, "
            f"p99 {p99['agents-sdk'].spread(us)} µs",
            f"**{faster50.median:.1f}x** faster at p50 ({faster50.spread('{:.1f}')}), "
            f"{faster99.median:.1f}x at p99 ({faster99.spread('{:.1f}')})",
            p50["cantata"].load_range(),
        )
    ]


# --- client CPU and memory --------------------------------------------------------------

MINE = ("cantata", "cantata-websockets")
PEERS = ("agents-sdk", "agents-sdk-nodeflate", "trio-ws-floor")
CLIENTS = MINE + PEERS


def batches(n: int, rep: int, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """The clients that run side by side, batch after batch, in one repeat.

    A few sessions each: all five at once. More would compete for the two
    cores, so then each of Cantata's framings beside each peer, two at a time,
    in alternating order.
    """
    if n <= args.together_up_to:
        return [CLIENTS]
    pairs: list[tuple[str, ...]] = [(ours, peer) for peer in PEERS for ours in MINE]
    return pairs if rep % 2 == 0 else [pair[::-1] for pair in reversed(pairs)]


def cpu_part(args: argparse.Namespace) -> list[Row]:
    work = Path(tempfile.mkdtemp(prefix="compare_"))
    rules, audio = work / "voice.toml", work / "script.pcm"
    rules.write_text(bench_runtime.VOICE_RULES)
    cpu_args = argparse.Namespace(
        speech_ms=1000,
        silence_ms=3000,
        turns=args.turns,
        chunk_ms=20,
        lead_ms=1000,
        tail_ms=1000,
    )
    audio.write_bytes(
        bench_runtime.make_script(
            turns=args.turns, tool_turn=min(2, args.turns - 1), speech_ms=1000, silence_ms=3000
        )
    )
    engine = [str(HERE / "bench_runtime.py"), "_engine", f"--rules={rules}"]
    cpu: dict[tuple[int, str], Figures] = {}
    idle: dict[tuple[int, str], Figures] = {}
    active: dict[tuple[int, str], Figures] = {}
    side_by_side: dict[tuple[int, str, str], Figures] = {}  # ratios of clients run at once
    incomplete: list[str] = []
    for n in args.sessions:
        for rep in range(args.repeat):
            for batch in batches(n, rep, args):
                results = bench_runtime.run_together(batch, n, cpu_args, engine, audio)
                figures = {r["framework"]: bench_runtime.per_minute(r) for r in results}
                for ours in MINE:
                    for theirs in PEERS:
                        if ours in figures and theirs in figures:
                            ratio = side_by_side.setdefault((n, ours, theirs), Figures())
                            ratio.add(figures[ours] / figures[theirs])
                for result in results:
                    client = result["framework"]
                    problems = bench_runtime.check(result, args.turns)
                    if problems:
                        incomplete.append(f"{client} N={n}: {problems[0]}")
                    key = (n, client)
                    cpu.setdefault(key, Figures()).add(figures[client])
                    # From one session up: the first one's imports are not per session.
                    rss1, rss_idle, rss_active = result["rss_kib"]
                    idle.setdefault(key, Figures()).add((rss_idle - rss1) / (n - 1))
                    active.setdefault(key, Figures()).add((rss_active - rss1) / (n - 1))
                    print(
                        f"cpu: {client} N={n}: {figures[client]:.3f} s/session/min, "
                        f"{idle[key].values[-1]:.0f} / {active[key].values[-1]:.0f} KiB per "
                        f"session idle / active, beside {', '.join(set(batch) - {client})}; "
                        f"load {load():.2f}" + (f"; INCOMPLETE: {problems[0]}" if problems else "")
                    )
    for problem in incomplete:
        print(f"   ! {problem}")
    rows: list[Row] = []
    s = "{:.3f}"
    for n in args.sessions:
        mine, fast = cpu[(n, "cantata")], cpu[(n, "cantata-websockets")]
        for label, peer_name, peer_key in (
            (
                "the Agents SDK, compression off on both",
                "Agents SDK, no deflate",
                "agents-sdk-nodeflate",
            ),
            ("the Agents SDK as shipped", "Agents SDK as shipped", "agents-sdk"),
            ("the bare trio-websocket floor", "trio-websocket, no framework", "trio-ws-floor"),
        ):
            peer = cpu[(n, peer_key)]
            r = side_by_side[(n, "cantata", peer_key)]
            rf = side_by_side[(n, "cantata-websockets", peer_key)]
            rows.append(
                (
                    f"client CPU per voice session, s per minute of audio, N={n}, 20 ms "
                    f"chunks, server VAD, a tool turn: beside {label}",
                    f"{mine.median:.3f} ({mine.spread(s)}); framing=websockets "
                    f"{fast.median:.3f} ({fast.spread(s)})",
                    f"{peer_name}: {peer.median:.3f} ({peer.spread(s)})",
                    f"**{r.median:.2f}x** ({r.spread('{:.2f}')}); websockets "
                    f"**{rf.median:.2f}x** ({rf.spread('{:.2f}')})",
                    mine.load_range(),
                )
            )
    n = max(args.sessions)
    k = "{:.0f}"
    for what, table in (("idle (connected, configured)", idle), ("active", active)):
        mine, sdk = table[(n, "cantata")], table[(n, "agents-sdk")]
        # A process's own memory does not drift with the machine: medians against medians.
        low, high = min(mine.values) / max(sdk.values), max(mine.values) / min(sdk.values)
        rows.append(
            (
                f"client memory per session, {what}, N={n} (RSS growth from 1 to N sessions)",
                f"{mine.median:.0f} KiB ({mine.spread(k)})",
                f"Agents SDK: {sdk.median:.0f} KiB ({sdk.spread(k)})",
                f"**{mine.median / sdk.median:.2f}x** ({low:.2f}-{high:.2f})",
                mine.load_range(),
            )
        )
    return rows


# --- engine capacity --------------------------------------------------------------------


def engine_part(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for workers, levels in ((1, args.engine_levels), (2, args.worker_levels)):
        best = Figures()
        for _ in range(args.repeat):
            command = [
                sys.executable,
                str(HERE / "bench_engine.py"),
                "--sessions",
                *map(str, levels),
                "--keep-going",
                f"--seconds={args.engine_seconds}",
                f"--workers={workers}",
                f"--quiet-wait={args.quiet_wait}",
                "--retries=1",
            ]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
            found = re.search(r"largest N with p99 < \S+ ms: (\S+)", done.stdout)
            value = float(found.group(1)) if found and found.group(1) != "none" else 0.0
            best.add(value)
            print(
                f"engine: workers={workers}: largest passing level {value:.0f}; load {load():.2f}"
            )
        rows.append(
            (
                "real-time voice sessions one engine holds at p99 < 50 ms, 100 ms appends "
                f"(`bench_engine.py`, levels {' '.join(map(str, levels))}"
                f"{', --workers 2' if workers == 2 else ', one process'})",
                f"**{best.median:.0f}** ({best.spread('{:.0f}')})",
                "target " + ("130" if workers == 1 else "250"),
                "met" if best.median >= (130 if workers == 1 else 250) else "**missed**",
                best.load_range(),
            )
        )
    return rows


# --- the table ------------------------------------------------------------------------

PARTS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "parse": parse_part,
    "latency": latency_part,
    "cpu": cpu_part,
    "engine": engine_part,
}


def table(rows: Sequence[Row], args: argparse.Namespace) -> str:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
        f"`tests/benchmarks/compare.py --repeat {args.repeat}`"
        f"{' --quick' if args.quick else ''}: medians, (min-max) over the repeats, "
        "ratios run by run; client CPU from clients run side by side, an engine each "
        f"(all five at N <= {args.together_up_to}, else two at a time).",
        "",
        "| benchmark | Cantata | peer or floor | ratio | load average |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in rows]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = README.read_text()
    if BEGIN not in readme or END not in readme:
        sys.exit(f"README.md has no {BEGIN} ... {END} markers to write between")
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of every measurement")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small and short")
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50], metavar="N")
    parser.add_argument("--turns", type=int, default=4, help="user turns per CPU session")
    parser.add_argument(
        "--together-up-to",
        type=int,
        default=10,
        metavar="N",
        help="cpu: clients of N sessions or fewer run all at once, larger ones two at a time",
    )
    parser.add_argument("--latency-turns", type=int, default=500)
    parser.add_argument("--parse-seconds", type=float, default=2.0)
    parser.add_argument("--engine-levels", type=int, nargs="+", default=[130, 250, 350])
    parser.add_argument("--worker-levels", type=int, nargs="+", default=[250])
    parser.add_argument("--engine-seconds", type=int, default=15)
    parser.add_argument("--quiet-wait", type=float, default=20, help="engine: wait for idle (s)")
    parser.add_argument("--write-readme", action="store_true", help="put the table in README.md")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.sessions, args.turns = 1, [3], 2
        args.quiet_wait = 1
        args.latency_turns, args.parse_seconds = 50, 0.3
        args.engine_levels, args.worker_levels, args.engine_seconds = [10], [10], 3
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows: list[Row] = []
    for name in args.parts:
        rows += PARTS[name](args)
    text = table(rows, args)
    print()
    print(text)
    if args.write_readme:
        write_readme(text)
        print("\nREADME.md: table written")


if __name__ == "__main__":
    main()
