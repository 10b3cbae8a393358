"""``cantata dial URL``: a simulated Twilio caller for a phone endpoint, offline.

It places a call to a :class:`~framework.telephony.PhoneServer` (or anything
that speaks Twilio's voice webhook and Media Streams) as Twilio would: a
signed webhook, then the stream, the caller's WAV paced in real time as
mu-law frames, marks acknowledged after a playout delay, keypad presses, and
what the caller heard written to a WAV. It prints what happened as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import trio

from framework.audio import pcm16_to_ulaw, read_wav, resample, ulaw_to_pcm16, write_wav
from framework.telephony import DialError, TwilioCaller, dial

RATE = 8000


def _caller_audio(path: str) -> bytes:
    """A WAV file as the caller's mu-law at 8 kHz, with a second of silence after it."""
    samples, rate = read_wav(path)
    voice = resample(samples, rate, RATE) if rate != RATE else samples
    audio = np.concatenate([voice, np.zeros(RATE, dtype=np.int16)]).astype("<i2")
    return pcm16_to_ulaw(audio.tobytes())


async def _call(args: argparse.Namespace, token: str, audio: bytes | None) -> TwilioCaller:
    async with dial(args.url, auth_token=token, caller=args.caller, callee=args.callee) as caller:
        with trio.move_on_after(args.listen):
            await trio.sleep(args.wait)
            if audio is not None:
                await caller.say(audio)
            if args.digits:
                await caller.press(args.digits)
            await caller.ended.wait()
    return caller


def _summary(caller: TwilioCaller) -> dict[str, object]:
    return {
        "call_sid": caller.start.call_sid,
        "ended": caller.end_reason or "the caller hung up",
        "heard_ms": len(caller.heard) // 8,
        "heard_by_item_ms": {item: n // 8 for item, n in caller.heard_by_item.items()},
        "marks_acknowledged": caller.marks_acknowledged,
        "clears": [{"item_id": c.item_id, "heard_ms": c.heard_bytes // 8} for c in caller.clears],
        "next_twiml": caller.next_twiml,
    }


def run_dial(args: argparse.Namespace) -> int:
    """Runs ``cantata dial``; returns the exit status."""
    token = args.auth_token or os.environ.get("TWILIO_AUTH_TOKEN")
    if not token:
        print(
            "cantata dial: no auth token; set TWILIO_AUTH_TOKEN to the endpoint's, "
            "or pass --auth-token.",
            file=sys.stderr,
        )
        return 2
    try:
        audio = _caller_audio(args.wav) if args.wav else None
    except (OSError, ValueError) as e:
        print(f"cantata dial: {e}", file=sys.stderr)
        return 2
    try:
        caller = trio.run(_call, args, token, audio)
    except DialError as e:
        print(f"cantata dial: {e}", file=sys.stderr)
        return 1
    if args.record:
        heard = np.frombuffer(ulaw_to_pcm16(caller.recording()), "<i2")
        write_wav(args.record, heard, RATE)
    print(json.dumps(_summary(caller), indent=2))
    return 0
