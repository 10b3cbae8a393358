"""Captions files from transcript segments: SubRip (``.srt``) and WebVTT (``.vtt``)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from framework.runtime import TranscriptSegment


def _stamp(ms: int, separator: str) -> str:
    hours, rest = divmod(max(0, ms), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def _cues(segments: Iterable[TranscriptSegment]) -> list[tuple[int, int, str]]:
    cues = []
    for segment in segments:
        text = " ".join(segment.text.split())
        if not segment.final or not text or segment.start_ms is None:
            continue
        end = segment.end_ms if segment.end_ms is not None else segment.start_ms + 1000
        cues.append((segment.start_ms, max(end, segment.start_ms + 1), text))
    return cues


def to_srt(segments: Iterable[TranscriptSegment]) -> str:
    """The final segments as SubRip text, numbered from 1."""
    blocks = [
        f"{n}\n{_stamp(start, ',')} --> {_stamp(end, ',')}\n{text}\n"
        for n, (start, end, text) in enumerate(_cues(segments), start=1)
    ]
    return "\n".join(blocks)


def to_webvtt(segments: Iterable[TranscriptSegment]) -> str:
    """The final segments as WebVTT text."""
    blocks = [
        f"{_stamp(start, '.')} --> {_stamp(end, '.')}\n{text}\n"
        for start, end, text in _cues(segments)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def write_captions(path: str | Path, segments: Iterable[TranscriptSegment]) -> None:
    """Writes ``.vtt`` as WebVTT and anything else as SubRip."""
    path = Path(path)
    text = to_webvtt(segments) if path.suffix.lower() == ".vtt" else to_srt(segments)
    path.write_text(text, encoding="utf-8")
