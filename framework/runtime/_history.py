"""The local mirror of the conversation, built from server events only.

The server owns the conversation; this is what the client has been told of
it, in the server's order: items as added and completed, user transcripts as
they grow, assistant text and transcripts as they stream, truncations and
deletions. Updating it is pure bookkeeping, cheap enough for the reader.

It holds one entry per item of the server's conversation (a session's
conversation is bounded by the session's own lifetime and the server's
limits); items the server deletes are dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias, cast

import attrs

from framework.protocol import (
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreatedEvent,
    ConversationItemDeletedEvent,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    ConversationItemTruncatedEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseTextDeltaEvent,
    ServerEvent,
)


@attrs.define(kw_only=True)
class HistoryItem:
    """One conversation item as the client knows it.

    Attributes:
        id: the item's id.
        kind: ``"message"``, ``"function_call"``, ``"function_call_output"``, or
            the protocol's type for anything else.
        role: ``"user"``, ``"assistant"`` or ``"system"`` for messages.
        text: typed text or transcript so far (``final`` says whether it can grow).
        item: the latest protocol object for it.
        truncated_ms: where its audio was truncated, if it was.
        audio_bytes: assistant audio received for it (to place a truncation in its words).
    """

    id: str
    kind: str
    role: str | None = None
    text: str = ""
    final: bool = False
    item: ConversationItem | None = None
    truncated_ms: int | None = None
    audio_bytes: int = 0


_Message = (
    RealtimeConversationItemUserMessage
    | RealtimeConversationItemAssistantMessage
    | RealtimeConversationItemSystemMessage
)


def message_text(item: _Message) -> str:
    """The words a message item's content parts carry (text and transcripts), joined."""
    texts = []
    for part in item.content:
        for value in (part.text, getattr(part, "transcript", None)):
            if isinstance(value, str) and value:
                texts.append(value)
    return " ".join(texts)


def _describe(item: ConversationItem) -> tuple[str, str | None, str]:
    if isinstance(item, _Message):
        return "message", item.role, message_text(item)
    if isinstance(item, RealtimeConversationItemFunctionCall):
        return "function_call", None, f"{item.name}({item.arguments})"
    if isinstance(item, RealtimeConversationItemFunctionCallOutput):
        return "function_call_output", None, item.output
    return str(getattr(item, "type", "unknown")), None, ""


class History:
    """The conversation, in order, as the server reported it."""

    def __init__(self) -> None:
        self._items: dict[str, HistoryItem] = {}
        self._order: list[str] = []

    @property
    def items(self) -> list[HistoryItem]:
        return [self._items[i] for i in self._order]

    def __len__(self) -> int:
        return len(self._order)

    def get(self, item_id: str) -> HistoryItem | None:
        return self._items.get(item_id)

    def before(self, item_id: str) -> str | None:
        """The id of the item before ``item_id`` (``None``: it is first, or unknown)."""
        if item_id not in self._items:
            return None
        index = self._order.index(item_id)
        return self._order[index - 1] if index > 0 else None

    def transcript(self) -> list[tuple[str, str]]:
        """``(role, text)`` for every message with words in it."""
        return [(i.role or i.kind, i.text) for i in self.items if i.kind == "message" and i.text]

    def _put(self, item: ConversationItem, after: str | bool | None, *, final: bool) -> None:
        """Adds or updates an item; ``after`` is its predecessor, None for the
        start of the conversation, or False when the event does not say."""
        item_id = getattr(item, "id", None)
        if not isinstance(item_id, str):
            return
        kind, role, text = _describe(item)
        known = self._items.get(item_id)
        if known is None:
            known = HistoryItem(id=item_id, kind=kind, role=role)
            self._items[item_id] = known
            if after is None:
                self._order.insert(0, item_id)
            elif isinstance(after, str) and after in self._items and after != item_id:
                # Nearly always the newest item: no scan of the whole conversation.
                if self._order and self._order[-1] == after:
                    self._order.append(item_id)
                else:
                    self._order.insert(self._order.index(after) + 1, item_id)
            else:
                self._order.append(item_id)
        known.item = item
        if text:
            known.text = text
        known.final = final or known.final

    def apply(self, event: ServerEvent) -> None:
        """Updates the mirror from one server event (others are ignored)."""
        update = _UPDATES.get(type(event))
        if update is not None:
            update(self, event)

    def _added(self, event: ConversationItemAdded | ConversationItemCreatedEvent) -> None:
        known = self._items.get(getattr(event.item, "id", None) or "")
        if known is not None:
            # Added again: re-created (a replay, a cut), without its audio.
            known.audio_bytes, known.truncated_ms = 0, None
        previous = event.previous_item_id
        self._put(event.item, previous if isinstance(previous, str | None) else False, final=False)

    def _output_added(self, event: ResponseOutputItemAddedEvent) -> None:
        self._put(event.item, False, final=False)

    def _done(self, event: ConversationItemDone | ResponseOutputItemDoneEvent) -> None:
        self._put(event.item, False, final=True)

    def _delta(
        self,
        event: ResponseTextDeltaEvent
        | ResponseAudioTranscriptDeltaEvent
        | ConversationItemInputAudioTranscriptionDeltaEvent,
    ) -> None:
        known = self._items.get(event.item_id)
        if known is not None and isinstance(event.delta, str):
            known.text += event.delta

    def _audio(self, event: ResponseAudioDeltaEvent) -> None:
        known = self._items.get(event.item_id)
        if known is not None:
            # The decoded length, from the base64 text's (no decoding on the reader).
            known.audio_bytes += len(event.delta) * 3 // 4 - event.delta[-2:].count("=")

    def _arguments(self, event: ResponseFunctionCallArgumentsDoneEvent) -> None:
        # A call is whole (and told to the tools) here, before its item is done.
        known = self._items.get(event.item_id)
        if known is not None and isinstance(known.item, RealtimeConversationItemFunctionCall):
            known.item = attrs.evolve(known.item, arguments=event.arguments)
            known.final = True

    def _transcribed(self, event: ConversationItemInputAudioTranscriptionCompletedEvent) -> None:
        known = self._items.get(event.item_id)
        if known is not None:
            known.text = event.transcript
            known.final = True

    def _truncated(self, event: ConversationItemTruncatedEvent) -> None:
        known = self._items.get(event.item_id)
        if known is not None:
            known.truncated_ms = event.audio_end_ms

    def _deleted(self, event: ConversationItemDeletedEvent) -> None:
        if self._items.pop(event.item_id, None) is not None:
            self._order.remove(event.item_id)


_Update: TypeAlias = Callable[[History, ServerEvent], None]
_UPDATES: dict[type[ServerEvent], _Update] = {
    kind: cast(_Update, update)
    for kinds, update in (
        ((ConversationItemAdded, ConversationItemCreatedEvent), History._added),
        ((ResponseOutputItemAddedEvent,), History._output_added),
        ((ConversationItemDone, ResponseOutputItemDoneEvent), History._done),
        (
            (
                ResponseTextDeltaEvent,
                ResponseAudioTranscriptDeltaEvent,
                ConversationItemInputAudioTranscriptionDeltaEvent,
            ),
            History._delta,
        ),
        ((ConversationItemInputAudioTranscriptionCompletedEvent,), History._transcribed),
        ((ResponseAudioDeltaEvent,), History._audio),
        ((ResponseFunctionCallArgumentsDoneEvent,), History._arguments),
        ((ConversationItemTruncatedEvent,), History._truncated),
        ((ConversationItemDeletedEvent,), History._deleted),
    )
    for kind in kinds
}
"""Which server events change the mirror, and how (a table: most events do not)."""
