"""The local mirror of the conversation, built from server events only.

The server owns the conversation; this is what the client has been told of
it, in the server's order: items as added and completed, user transcripts as
they grow, assistant text and transcripts as they stream, truncations and
deletions. Updating it is pure bookkeeping, cheap enough for the reader.
"""

from __future__ import annotations

from typing import Any

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
    ResponseAudioTranscriptDeltaEvent,
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
    """

    id: str
    kind: str
    role: str | None = None
    text: str = ""
    final: bool = False
    item: Any = None
    truncated_ms: int | None = None


def _describe(item: ConversationItem) -> tuple[str, str | None, str]:
    if isinstance(
        item,
        (
            RealtimeConversationItemUserMessage,
            RealtimeConversationItemAssistantMessage,
            RealtimeConversationItemSystemMessage,
        ),
    ):
        texts = []
        for part in item.content:
            for name in ("text", "transcript"):
                value = getattr(part, name, None)
                if isinstance(value, str) and value:
                    texts.append(value)
        return "message", item.role, " ".join(texts)
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
        if isinstance(event, (ConversationItemAdded, ConversationItemCreatedEvent)):
            previous = event.previous_item_id
            self._put(
                event.item, previous if isinstance(previous, str | None) else False, final=False
            )
        elif isinstance(event, ConversationItemDone):
            self._put(event.item, False, final=True)
        elif isinstance(event, ResponseOutputItemAddedEvent):
            self._put(event.item, False, final=False)
        elif isinstance(event, ResponseOutputItemDoneEvent):
            self._put(event.item, False, final=True)
        elif isinstance(event, (ResponseTextDeltaEvent, ResponseAudioTranscriptDeltaEvent)):
            known = self._items.get(event.item_id)
            if known is not None:
                known.text += event.delta
        elif isinstance(event, ConversationItemInputAudioTranscriptionDeltaEvent):
            known = self._items.get(event.item_id)
            if known is not None and isinstance(event.delta, str):
                known.text += event.delta
        elif isinstance(event, ConversationItemInputAudioTranscriptionCompletedEvent):
            known = self._items.get(event.item_id)
            if known is not None:
                known.text = event.transcript
                known.final = True
        elif isinstance(event, ConversationItemTruncatedEvent):
            known = self._items.get(event.item_id)
            if known is not None:
                known.truncated_ms = event.audio_end_ms
        elif (
            isinstance(event, ConversationItemDeletedEvent)
            and self._items.pop(event.item_id, None) is not None
        ):
            self._order.remove(event.item_id)
