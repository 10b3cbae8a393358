"""An item as the engine stores it: the item events show, and what they omit.

Events never carry audio, so a stored item holds none; the raw wire bytes of
its audio parts sit beside it (``conversation.item.retrieve`` adds them back
as base64), with what the session needs to know about them: their format,
whether the client truncated them, whether they were dropped to keep the
conversation under its audio bound, whether the item's transcription is
still running, and what the model understood of its audio when no
transcription was asked for.
"""

from __future__ import annotations

import base64

import attrs
import trio

from framework.protocol import (
    AssistantMessageContent,
    ConversationItem,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemUserMessage,
    UserMessageContent,
)

from ._audio import WireFormat
from ._usage import InputTokens, audio_tokens, item_text, text_tokens

_MESSAGES = (RealtimeConversationItemUserMessage, RealtimeConversationItemAssistantMessage)


@attrs.define(kw_only=True, eq=False)
class StoredItem:
    """An item of the conversation (or of a response's input), with what events omit."""

    item: ConversationItem
    """The item as events show it: its audio parts carry no audio."""
    audio: dict[int, bytearray] = attrs.Factory(dict)
    """The raw wire bytes of its audio parts, by content index."""
    audio_format: WireFormat | None = None
    transcribed: trio.Event | None = None
    """Set when the transcription of its audio settles (None: it has no audio to hear)."""
    heard: str | None = None
    """What the model understood of its audio, when the session asked for no
    transcript: the hosted model hears audio whether or not transcription
    events are asked for, so the brain reads this; events never show it."""
    truncated: bool = False
    """The client truncated its audio: what streams after is not kept."""
    audio_dropped: bool = False
    """Its audio was dropped to keep the conversation under its audio bound."""
    _tokens: InputTokens | None = None

    @property
    def id(self) -> str:
        return self.item.id if isinstance(self.item.id, str) else ""

    @property
    def audio_bytes(self) -> int:
        return sum(len(data) for data in self.audio.values())

    @property
    def text_bytes(self) -> int:
        return len(item_text(self.item)) + len(self.heard or "")

    def audio_ms(self, index: int | None = None) -> int:
        """Milliseconds of audio kept (of one content part, or of all)."""
        if self.audio_format is None:
            return 0
        kept = self.audio_bytes if index is None else len(self.audio.get(index, b""))
        return self.audio_format.ms(kept // self.audio_format.bytes_per_sample)

    def tokens(self) -> InputTokens:
        """The tokens a response reads for this item (computed once per change)."""
        if self._tokens is None:
            self._tokens = InputTokens(
                text=text_tokens(item_text(self.item)), audio=audio_tokens(self.audio_ms())
            )
        return self._tokens

    def changed(self) -> None:
        """Forgets what was computed from the item or its audio."""
        self._tokens = None

    def understood(self) -> ConversationItem:
        """The item as the brain reads it: a user audio part without a transcript
        carries what the model heard in it."""
        item = self.item
        if self.heard is None or not isinstance(item, RealtimeConversationItemUserMessage):
            return item
        parts = [
            attrs.evolve(part, transcript=self.heard)
            if part.type == "input_audio" and not part.transcript
            else part
            for part in item.content
        ]
        return attrs.evolve(item, content=parts)

    def with_audio(self) -> ConversationItem:
        """The item as ``conversation.item.retrieve`` shows it: audio included."""
        item = self.item
        if not self.audio or not isinstance(item, _MESSAGES):
            return item
        parts: list[UserMessageContent | AssistantMessageContent] = list(item.content)
        for index, data in self.audio.items():
            parts[index] = attrs.evolve(parts[index], audio=base64.b64encode(data).decode("ascii"))
        return attrs.evolve(item, content=parts)  # type: ignore[arg-type]
