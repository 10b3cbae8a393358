"""A session's VAD classifier: one per input rate, released when the session ends.

A model-backed classifier (Silero's) holds megabytes of native memory. Built
anew on every ``session.update`` and left to the cycle collector at the end,
a storm of short sessions held hundreds of them at once.
"""

from __future__ import annotations

import gc
import json
import weakref

import attrs
import trio
import trio_websocket

from framework.engine._vad import EnergyClassifier
from framework.testing import run_engine


@attrs.define
class Counted:
    """A classifier factory that counts what it builds and can tell which are still alive."""

    built: list[weakref.ref[EnergyClassifier]] = attrs.Factory(list)
    rates: list[int] = attrs.Factory(list)
    none_alive: trio.Event = attrs.Factory(trio.Event)

    def __call__(self, rate: int) -> EnergyClassifier:
        classifier = EnergyClassifier(rate)
        self.built.append(weakref.ref(classifier, self._freed))
        self.rates.append(rate)
        return classifier

    def _freed(self, _: object) -> None:
        if not self.alive():
            self.none_alive.set()

    def alive(self) -> int:
        return sum(1 for ref in self.built if ref() is not None)


def _update(fmt: str, rate: int | None = None) -> str:
    audio_format: dict[str, object] = {"type": fmt}
    if rate is not None:
        audio_format["rate"] = rate
    session = {"type": "realtime", "audio": {"input": {"format": audio_format}}}
    return json.dumps({"type": "session.update", "session": session})


async def _until(ws: trio_websocket.WebSocketConnection, kind: str) -> None:
    while json.loads(await ws.get_message())["type"] != kind:
        pass


async def test_updates_reuse_the_classifier_and_the_end_releases_it() -> None:
    factory = Counted()
    gc.disable()  # only reference counts may free it, as under a storm
    try:
        with trio.fail_after(20):
            async with run_engine(vad=factory) as url:
                async with trio_websocket.open_websocket_url(url + "?model=m") as ws:
                    await _until(ws, "session.created")
                    for _ in range(5):
                        await ws.send_message(_update("audio/pcm", 24000))
                        await _until(ws, "session.updated")
                    assert factory.rates == [24000]
                    await ws.send_message(_update("audio/pcmu"))
                    await _until(ws, "session.updated")
                    assert factory.rates == [24000, 8000]
                    assert factory.alive() == 1
                # The server notices the close and ends the session.
                with trio.fail_after(5):
                    await factory.none_alive.wait()
    finally:
        gc.enable()
    assert factory.alive() == 0
