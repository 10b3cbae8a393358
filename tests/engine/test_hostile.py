"""The hostile-input campaign: a storm of bad frames against a real ``cantata serve``.

Several connections send at least 10,000 frames drawn from a seeded generator:
malformed and mistyped JSON, unknown events, nesting hundreds to thousands of
levels deep, binary frames, frames torn across writes, fragmented messages with
control frames between the pieces, large and oversized messages, and outright
protocol violations (reserved opcodes and bits, unmasked frames, invalid UTF-8,
orphan continuations, long control frames) after which the server may close
and the connection comes back. Meanwhile a bystander, a real client, holds
normal text turns. Afterwards: the process lives, the bystander never noticed,
no traceback reached the log, every storm session is gone, and the server's
resident memory stayed within a stated bound.
"""

from __future__ import annotations

import base64
import json
import os
import random
import struct
from collections.abc import Callable

import attrs
import httpx2
import trio

from framework.engine._server import MAX_MESSAGE_BYTES

from .served import BINARY, CLOSE, PING, TEXT, RawSocket, frame, serving, text_turn

SEED = int(os.environ.get("CANTATA_STORM_SEED", "20261204"))
CONNECTIONS = 6
FRAMES = 10_000
RSS_GROWTH_BOUND_MIB = 400
"""What the storm may add to the server's resident memory, at its peak: two
messages over the hard limit (32 MiB each, held as bytes and text while being
refused) and a few of 17 MiB in flight at once, plus the interpreter's arenas."""

EVENTS = [
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.retrieve",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
]


def _junk(rng: random.Random, depth: int = 0) -> object:
    """A random JSON value."""
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return rng.choice([None, True, 0, -1, 2**63, 1.5e308, "", "x" * rng.randint(1, 40)])
    if roll < 0.75:
        return [_junk(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(["type", "item", "session", "id", "a"]): _junk(rng, depth + 1)}


def _nested(rng: random.Random) -> str:
    depth = rng.randint(65, 3000)
    opening, closing = ("[", "]") if rng.random() < 0.5 else ('{"a":', "}")
    return opening * depth + "1" + closing * depth


def _text(rng: random.Random, kind: str) -> bytes:
    """The payload of one bad (or odd) text message."""
    event_type = rng.choice(EVENTS)
    if kind == "garbage":
        good = json.dumps({"type": event_type, "event_id": "e", "item": _junk(rng)})
        return good[: rng.randint(0, len(good))].encode()
    if kind == "mistyped":
        fields = {
            name: _junk(rng)
            for name in rng.sample(
                [
                    "item",
                    "session",
                    "audio",
                    "item_id",
                    "response",
                    "content_index",
                    "audio_end_ms",
                    "event_id",
                ],
                3,
            )
        }
        return json.dumps({"type": event_type, **fields}).encode()
    if kind == "unknown":
        return json.dumps({"type": f"no.such.{rng.randint(0, 9)}", "x": _junk(rng)}).encode()
    if kind == "deep":
        field = rng.choice(["item", "session", "response", "audio"])
        return ('{"type": "%s", "%s": %s}' % (event_type, field, _nested(rng))).encode()  # noqa: UP031
    if kind == "audio":
        audio = base64.b64encode(rng.randbytes(rng.choice([1, 3, 4801, 48_000]))).decode()
        if rng.random() < 0.3:
            audio = audio[:-1] + "%"
        return json.dumps({"type": "input_audio_buffer.append", "audio": audio}).encode()
    raise AssertionError(kind)


@attrs.frozen
class Shot:
    """What one storm step sends: the writes (a frame may be torn into several),
    how many frames that is, and whether the server may close after it."""

    writes: list[bytes]
    frames: int
    fatal: bool = False
    hang_up: bool = False
    """The storm drops the connection itself right after (a frame torn off for good)."""


def _shot(rng: random.Random) -> Shot:
    kind = rng.choices(
        [
            "garbage",
            "mistyped",
            "unknown",
            "deep",
            "audio",
            "binary",
            "torn",
            "fragmented",
            "large",
            "violation",
            "oversized",
        ],
        weights=[20, 20, 10, 12, 12, 8, 8, 5, 0.05, 4, 0.02],
    )[0]
    if kind == "binary":
        return Shot([frame(BINARY, rng.randbytes(rng.randint(0, 2000)))], 1)
    if kind == "torn":
        whole = frame(TEXT, _text(rng, rng.choice(["mistyped", "audio", "deep"])))
        cuts = sorted(rng.sample(range(1, len(whole)), min(len(whole) - 1, rng.randint(1, 6))))
        pieces = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
        return Shot(pieces, 1)
    if kind == "fragmented":
        payload = _text(rng, "mistyped")
        third = max(1, len(payload) // 3)
        return Shot(
            [
                frame(TEXT, payload[:third], fin=False),
                frame(PING, b"mid-message"),
                frame(0x0, payload[third : 2 * third], fin=False),
                frame(0x0, payload[2 * third :]),
            ],
            4,
        )
    if kind == "large":  # over the session's limit, under the hard one: an error event
        return Shot([frame(TEXT, b'{"type": "x", "pad": "' + b"p" * (17 << 20) + b'"}')], 1)
    if kind == "oversized":  # over the hard limit: close 1009
        return Shot([frame(TEXT, b"o" * (MAX_MESSAGE_BYTES + 1))], 1, fatal=True)
    if kind == "violation":
        violations: list[Callable[[], bytes]] = [
            lambda: frame(rng.choice([0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF]), b"x"),
            lambda: frame(TEXT, b'{"type": "x"}', rsv=rng.choice([1, 2, 4])),
            lambda: frame(TEXT, b'{"type": "x"}', mask=b""),
            lambda: frame(TEXT, b"\xff\xfe not utf-8"),
            lambda: frame(0x0, b"orphan continuation"),
            lambda: frame(PING, b"p" * 200),
            lambda: frame(CLOSE, struct.pack("!H", 999)),
        ]
        if rng.random() < 0.15:  # a frame that promises more than it delivers, then EOF
            return Shot([frame(TEXT, b"short", length=70_000)], 1, fatal=True, hang_up=True)
        return Shot([rng.choice(violations)()], 1, fatal=True)
    return Shot([frame(TEXT, _text(rng, kind))], 1)


@attrs.define
class Tally:
    frames: int = 0
    connections: int = 0
    bytes: int = 0


async def _drain(raw: RawSocket, closed: trio.Event) -> None:
    """Reads the server's frames (answering pings) until it hangs up."""
    await raw.until_closed()
    closed.set()


async def _storm(port: int, rng: random.Random, tally: Tally, quota: int) -> None:
    """One storm connection after another, until ``quota`` frames are sent."""
    sent = 0
    while sent < quota:
        raw = await RawSocket.open(port)
        tally.connections += 1
        closed = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_drain, raw, closed)
            try:
                while sent < quota:
                    shot = _shot(rng)
                    for write in shot.writes:
                        await raw.send(write)
                        tally.bytes += len(write)
                    sent += shot.frames
                    tally.frames += shot.frames
                    if shot.fatal:
                        break
            except trio.BrokenResourceError:
                pass  # the server closed this one: a protocol violation, or 1009
            # A connection whose last frame was fatal is closed by the server (or
            # cut by its close grace); one that ends cleanly is closed by us.
            if shot.hang_up:
                await raw.send_eof()
            with trio.move_on_after(10):
                if not shot.fatal:
                    await raw.answer_close()
                await closed.wait()
            nursery.cancel_scope.cancel()
        await raw.aclose()


async def _no_sessions_left(port: int) -> None:
    """Every storm session (and the bystander's) ends; the process is asked over HTTP."""
    async with httpx2.AsyncClient(timeout=5) as http:
        while True:
            health = (await http.get(f"http://127.0.0.1:{port}/health")).json()
            if health["sessions"] == 0:
                return
            await trio.sleep(0.05)  # another process's state: nothing to await but asking again


async def test_a_storm_of_hostile_frames() -> None:
    rng = random.Random(SEED)
    tally = Tally()
    with trio.fail_after(120):
        # --debug: any error the server logs would carry its traceback, and fail the test.
        async with serving("--debug") as served:
            before = served.rss_kib()
            peak = before
            turns = 0
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                storms = trio.open_nursery()
                async with storms as storm_nursery:
                    for index in range(CONNECTIONS):
                        quota = FRAMES // CONNECTIONS + (index < FRAMES % CONNECTIONS)
                        seeded = random.Random(rng.getrandbits(64))
                        storm_nursery.start_soon(_storm, served.port, seeded, tally, quota)
                    # The bystander talks the whole time the storm runs.
                    while storm_nursery.child_tasks:
                        await text_turn(served.url)
                        turns += 1
                        peak = max(peak, served.rss_kib())
                        await trio.sleep(0.2)  # a person's pace, not a benchmark's
                nursery.cancel_scope.cancel()
            duration = trio.current_time() - start
            await text_turn(served.url)  # and once more after it
            await _no_sessions_left(served.port)
            after = served.rss_kib()
            assert served.process.returncode is None
            print(
                f"\nstorm: {tally.frames} frames ({tally.bytes / 2**20:.1f} MiB) over "
                f"{tally.connections} connections ({CONNECTIONS} at a time) in {duration:.1f} s; "
                f"bystander turns: {turns}; server RSS {before / 1024:.0f} MiB before, "
                f"{peak / 1024:.0f} MiB peak, {after / 1024:.0f} MiB after (seed {SEED})"
            )
        stderr = served.stderr.text
    assert tally.frames >= FRAMES and tally.connections > CONNECTIONS
    assert turns >= 1
    assert "Traceback" not in stderr, stderr[-3000:]
    # Neither the guard nor hypercorn's last resort had to step in.
    assert "error serving" not in stderr and "Error in ASGI" not in stderr, stderr[-3000:]
    assert (peak - before) / 1024 < RSS_GROWTH_BOUND_MIB
