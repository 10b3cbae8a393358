"""The input audio buffer: torn samples and its bounds (issue 11, items 11 and 13).

On trio's MockClock, in memory; offsets are counted in samples, so they are
asserted exactly.
"""

from __future__ import annotations

import base64
import itertools
from typing import Any

import numpy as np
import trio
import trio.testing

from .helpers import Client, encode, memory_session, silence, speech


async def _configure(client: Client, turn_detection: object) -> None:
    await client.send(
        {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"input": {"turn_detection": turn_detection}}},
        }
    )
    await client.until("session.updated")


async def _append(client: Client, data: bytes) -> None:
    await client.send(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(data).decode()}
    )


async def _retrieved_audio(client: Client, item_id: str) -> bytes:
    await client.send({"type": "conversation.item.retrieve", "item_id": item_id})
    item: dict[str, Any] = (await client.until("conversation.item.retrieved"))[-1]["item"]
    return base64.b64decode(item["content"][0]["audio"])


# --- item 11: PCM16 appended at an odd byte boundary ---------------------------------------


async def test_a_torn_sample_waits_for_its_other_half(
    autojump_clock: trio.testing.MockClock,
) -> None:
    audio = encode(speech(300, freq=440.0))
    async with memory_session() as (client, _):
        await _configure(client, None)
        cuts = [0, 1, 4801, 4802, 9603, len(audio)]  # odd, even, odd... boundaries
        for start, end in itertools.pairwise(cuts):
            await _append(client, audio[start:end])
        await client.send({"type": "input_audio_buffer.commit"})
        committed = (await client.until("input_audio_buffer.committed"))[-1]
        assert await _retrieved_audio(client, committed["item_id"]) == audio


async def test_torn_appends_keep_vad_offsets_exact(
    autojump_clock: trio.testing.MockClock,
) -> None:
    audio = encode(np.concatenate([silence(500), speech(400), silence(700)]))
    async with memory_session() as (client, _):
        await _configure(client, {"type": "server_vad", "create_response": False})
        for start in range(0, len(audio), 961):  # every append ends mid-sample, or not
            await _append(client, audio[start : start + 961])
        events = await client.until("input_audio_buffer.committed")
        started, stopped = events[0], events[1]
        assert (started["audio_start_ms"], stopped["audio_end_ms"]) == (200, 1400)
        kept = await _retrieved_audio(client, started["item_id"])
        assert kept == audio[200 * 48 : 1400 * 48]


async def test_clear_forgets_a_torn_byte(autojump_clock: trio.testing.MockClock) -> None:
    audio = encode(speech(200))
    async with memory_session() as (client, _):
        await _configure(client, None)
        await _append(client, b"\x01")
        await client.send({"type": "input_audio_buffer.clear"})
        await client.until("input_audio_buffer.cleared")
        await _append(client, audio)
        await client.send({"type": "input_audio_buffer.commit"})
        committed = (await client.until("input_audio_buffer.committed"))[-1]
        assert await _retrieved_audio(client, committed["item_id"]) == audio
