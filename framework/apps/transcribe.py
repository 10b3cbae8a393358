"""``cantata transcribe``: captions for a WAV file, or the microphone, from a transcription session.

Where it runs follows :mod:`framework.apps.backend`: the hosted API when there
is a key for it, a server by ``--url``, else the local engine started
in-process with the installed transcriber (which it must have: without one it
says so at once). Final segments are printed as they come, in the order of the
speech, and written to ``--out`` (``.srt`` or ``.vtt``).

It ends at the end of the file (the transcription session ends with its
audio), or at Ctrl-C when it listens to the microphone. A turn the server
could not transcribe makes the exit status 1, with one line saying why.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import AsyncIterable

import attrs
import trio

from framework.apps.backend import BackendChoice, open_backend
from framework.apps.captions import write_captions
from framework.runtime import TranscriptSegment, open_transcription_session

FINISH_S = 30.0
"""How long the server may take, after the audio ends, to finish (beyond the audio's length)."""


class TranscriptionIncomplete(Exception):
    """Turns the server could not transcribe, or did not finish transcribing."""


@attrs.frozen(kw_only=True)
class Transcribed:
    """What a run heard."""

    segments: list[TranscriptSegment]
    finished: bool


def _stamp(ms: int | None) -> str:
    return "?" if ms is None else f"{ms // 60000:02d}:{ms % 60000 / 1000:06.3f}"


async def _transcribe(
    args: argparse.Namespace, source: AsyncIterable[bytes], length_s: float
) -> Transcribed:
    choice = BackendChoice(
        engine=args.engine,
        url=args.url,
        api_key=args.api_key,
        parts={"transcriber": args.transcriber, "vad": args.vad},
    )
    async with (
        open_backend(choice, require=("transcriber",), answers=False) as backend,
        open_transcription_session(
            url=backend.url, api_key=backend.api_key, audio_in=source, language=args.language
        ) as session,
    ):
        print(f"transcribing on {backend.described}", flush=True)
        with trio.move_on_after(length_s + FINISH_S) as scope:
            async for segment in session:
                if segment.final and segment.error is None:
                    print(
                        f"[{_stamp(segment.start_ms)} -> {_stamp(segment.end_ms)}] {segment.text}"
                    )
        return Transcribed(segments=session.segments, finished=not scope.cancelled_caught)


def transcribe(args: argparse.Namespace) -> int:
    """``cantata transcribe [FILE.wav]``: prints the captions as they come; writes ``--out``.

    Raises:
        OSError, ValueError: the file cannot be read as WAV.
        TranscriptionIncomplete: a turn could not be transcribed, or the server did not finish.
        CantataError: the session could not start or ended badly.
    """
    if args.wav is not None:
        from framework.audio import WavSource

        wav = WavSource(args.wav, realtime=args.realtime)
        outcome = trio.run(_transcribe, args, wav, wav.duration_ms / 1000)
    else:
        outcome = trio.run(_from_microphone, args)
    segments = outcome.segments
    if args.out:
        write_captions(args.out, segments)
        print(f"wrote {sum(1 for s in segments if s.text)} captions to {args.out}")
    if not segments and outcome.finished:
        print("no speech was heard")
    failed = [s for s in segments if s.error is not None]
    if failed:
        raise TranscriptionIncomplete(
            f"{len(failed)} of {len(segments)} turns could not be transcribed: {failed[0].error}"
        )
    if not outcome.finished:
        raise TranscriptionIncomplete(
            "the server did not finish transcribing in time; the captions written are partial"
        )
    return 0


async def _from_microphone(args: argparse.Namespace) -> Transcribed:
    """Listens until Ctrl-C, then transcribes what was still being said, and ends."""
    from framework.audio import AudioDeviceUnavailable, open_microphone

    try:
        microphone = open_microphone()
    except AudioDeviceUnavailable as e:
        raise AudioDeviceUnavailable(
            f"no WAV file given, and no microphone to listen to ({e}); pass FILE.wav"
        ) from e
    print("listening; press Ctrl-C to stop", flush=True)
    async with trio.open_nursery() as nursery:

        async def stop_at_ctrl_c() -> None:
            with trio.open_signal_receiver(signal.SIGINT) as signals:
                async for _ in signals:
                    await microphone.aclose()  # the source ends: the session finishes
                    return

        nursery.start_soon(stop_at_ctrl_c)
        outcome = await _transcribe(args, microphone, float("inf"))
        nursery.cancel_scope.cancel()
    return outcome
