"""``cantata transcribe``: captions for a WAV file, from a transcription session.

Against the hosted API when a key is set (or with ``--engine openai``),
otherwise against the local engine started in-process with an offline
transcriber from an installed plugin. Final segments are printed as they
come and written to ``--out`` (``.srt`` or ``.vtt``).
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import AsyncExitStack

import trio

from framework.apps.captions import write_captions
from framework.audio import WavSource
from framework.plugin import engine_part
from framework.runtime import TranscriptSegment, open_transcription_session
from framework.testing import run_engine


def transcribe(args: argparse.Namespace) -> int:
    """``cantata transcribe FILE.wav``: prints the captions as they come; writes ``--out``."""
    try:
        source = WavSource(args.wav, realtime=args.realtime, tail_silence_ms=1000)
    except (OSError, ValueError) as e:
        print(f"cantata transcribe: {e}", file=sys.stderr)
        return 2
    local = args.url is None and (
        args.engine == "local" or (args.engine == "auto" and not os.environ.get("OPENAI_API_KEY"))
    )
    parts: dict[str, object] = {}
    if local:
        try:
            parts["transcriber"] = engine_part("transcriber", args.transcriber or "pocketsphinx")
            if args.vad:
                parts["vad"] = engine_part("vad", args.vad)
        except LookupError as e:
            print(f"cantata transcribe: {e}", file=sys.stderr)
            return 2

    def stamp(ms: int | None) -> str:
        return "?" if ms is None else f"{ms // 60000:02d}:{ms % 60000 / 1000:06.3f}"

    async def run() -> list[TranscriptSegment]:
        async with AsyncExitStack() as stack:
            url = args.url
            if local:
                url = await stack.enter_async_context(run_engine(**parts))  # type: ignore[arg-type]
            session = await stack.enter_async_context(
                open_transcription_session(url=url, audio_in=source, language=args.language)
            )
            quiet = trio.current_time() + source.duration_ms / 1000 + 30
            with trio.move_on_at(quiet) as scope:
                async for segment in session:
                    if segment.final:
                        print(
                            f"[{stamp(segment.start_ms)} -> {stamp(segment.end_ms)}] {segment.text}"
                        )
                        # A second of quiet after the file has been heard: done.
                        scope.deadline = trio.current_time() + 2.0
            return session.segments

    segments = trio.run(run)
    if args.out:
        write_captions(args.out, segments)
        print(f"wrote {len(segments)} captions to {args.out}")
    return 0
