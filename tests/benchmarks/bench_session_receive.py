"""Receive-path benchmark: a session's CPU per server event, from a frame's text to the app.

``bench_protocol.py`` times the parser alone; this times everything a session
does with a server event once its text is read off the wire: typed parsing,
the history mirror, the edge, the hop to the response actor, audio into the
sink, and the application's events. The wire is taken away (a scripted server
in the same process), so the figure is the framework's own cost, free of the
socket and of the machine's wake-ups.

Each round is one spoken reply: ``response.created``, the message item, 200
audio deltas of 100 ms with a transcript delta every third, and the item and
response done. Beside it, ``parse-floor`` is what any client must do per
event: ``orjson.loads``, a look at the type, and a checkpoint. Run it on
demand::

    python tests/benchmarks/bench_session_receive.py [--rounds 20] [--repeat 3]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import time

import orjson
import trio
import trio.testing
from bench_runtime import VoiceBot, _PlayerSink

from framework import open_session
from framework.protocol import (
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseCreatedEvent,
    ResponseOutputItemAddedEvent,
    ServerEvent,
    to_json,
)
from framework.runtime import ResponseFinished
from framework.testing import ScriptedServer

DELTAS = 200
DELTA_BYTES = 4800  # 100 ms of PCM16 at 24 kHz


def _reply(server: ScriptedServer) -> list[str]:
    """One spoken reply's frames, as JSON text."""
    events = server.text_response("hello")
    created, added = events[0], events[1]
    assert isinstance(created, ResponseCreatedEvent)
    assert isinstance(added, ResponseOutputItemAddedEvent)
    response_id, item_id = created.response.id, added.item.id
    assert isinstance(response_id, str) and isinstance(item_id, str)
    delta = base64.b64encode(bytes(DELTA_BYTES)).decode()
    streamed: list[ServerEvent] = []
    for n in range(DELTAS):
        streamed.append(
            ResponseAudioDeltaEvent(
                event_id=f"a{n}",
                response_id=response_id,
                item_id=item_id,
                output_index=0,
                content_index=0,
                delta=delta,
            )
        )
        if n % 3 == 0:
            streamed.append(
                ResponseAudioTranscriptDeltaEvent(
                    event_id=f"t{n}",
                    response_id=response_id,
                    item_id=item_id,
                    output_index=0,
                    content_index=0,
                    delta="word ",
                )
            )
    return [to_json(e) for e in [*events[:2], *streamed, *events[2:]]]


async def _cantata(rounds: int) -> float:
    server = ScriptedServer()
    cpu = 0.0
    frames = 0
    async with open_session(VoiceBot(), connection=server, audio_out=_PlayerSink()) as session:
        await trio.testing.wait_all_tasks_blocked()
        events = session.__aiter__()
        for _ in range(rounds):
            texts = _reply(server)
            began = time.process_time()
            for text in texts:
                server._down_send.send_nowait(text)  # as the wire hands them over
            async for event in events:
                if isinstance(event, ResponseFinished):
                    break
            cpu += time.process_time() - began
            frames += len(texts)
            await trio.testing.wait_all_tasks_blocked()
    return cpu / frames * 1e6


async def _floor(rounds: int) -> float:
    texts = _reply(ScriptedServer())
    began = time.process_time()
    for _ in range(rounds):
        for text in texts:
            event = orjson.loads(text)
            if event["type"] == "response.output_audio.delta":
                _ = len(event["delta"]) * 3 // 4
            await trio.lowlevel.checkpoint()
    return (time.process_time() - began) / (rounds * len(texts)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="replies per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="measurements, interleaved")
    args = parser.parse_args()
    cantata: list[float] = []
    floor: list[float] = []
    for _ in range(args.repeat):
        cantata.append(trio.run(_cantata, args.rounds))
        floor.append(trio.run(_floor, args.rounds))
    ratios = [c / f for c, f in zip(cantata, floor, strict=True)]
    print(
        f"cantata: {statistics.median(cantata):.1f} us per server event "
        f"({min(cantata):.1f}-{max(cantata):.1f})"
    )
    print(
        f"parse-floor: {statistics.median(floor):.1f} us per server event "
        f"({min(floor):.1f}-{max(floor):.1f})"
    )
    print(f"ratio: {statistics.median(ratios):.1f}x ({min(ratios):.1f}-{max(ratios):.1f})")


if __name__ == "__main__":
    main()
