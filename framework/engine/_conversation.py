"""The default conversation: its items in order, and the client events on them.

Items are kept in a doubly linked list indexed by id, so that finding,
inserting after, deleting and naming the previous item are all O(1), however
long the conversation. Audio is kept as the raw wire bytes beside each item
(events never carry it; ``conversation.item.retrieve`` adds it back as
base64), and the items themselves hold none.

Handlers here: ``conversation.item.create``, ``.delete``, ``.retrieve`` and
``.truncate``. Truncating an assistant message that is still streaming cuts
what has streamed so far; the message keeps the cut, and loses its transcript
(the user never heard it), when it closes, finished or cancelled.

Bounds (:class:`ConversationLimits`), and what happens when one is reached:

* **items** (10,000): the oldest item is deleted, with a
  ``conversation.item.deleted`` event so that a client's mirror stays in
  step; the hosted API likewise drops the oldest items from a long
  conversation's context (``truncation: "auto"``).
* **text** (16 MiB of item text: messages, transcripts, arguments, outputs;
  an event is at most 16 MiB, so one item always fits): the oldest items are
  deleted in the same way.
* **audio** (32 MiB of raw audio, about 11 minutes of 24 kHz PCM16 or 70 of
  G.711): the audio stored longest ago is dropped, its item stays (with its
  transcript); retrieving it shows no audio, and truncating it is refused
  with a message saying why. The hosted API states no such bound.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from typing import Any

import attrs

from framework.protocol import (
    UNSET,
    ConversationItem,
    ConversationItemAdded,
    ConversationItemCreateEvent,
    ConversationItemDeletedEvent,
    ConversationItemDeleteEvent,
    ConversationItemDone,
    ConversationItemRetrieved,
    ConversationItemRetrieveEvent,
    ConversationItemTruncatedEvent,
    ConversationItemTruncateEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeMcpApprovalResponse,
)

from ._audio import wire_format
from ._client_items import accept_client_item
from ._config import RequestError
from ._outbox import Outbox
from ._session_config import SessionConfig
from ._stored_item import StoredItem

MAX_ITEMS = 10_000
MAX_TEXT_BYTES = 16 * 1024 * 1024
MAX_AUDIO_BYTES = 32 * 1024 * 1024


@attrs.frozen(kw_only=True)
class ConversationLimits:
    """The bounds of one session's conversation (see the module docstring)."""

    max_items: int = MAX_ITEMS
    max_text_bytes: int = MAX_TEXT_BYTES
    max_audio_bytes: int = MAX_AUDIO_BYTES


@attrs.frozen(kw_only=True)
class ConversationStatistics:
    """What a conversation holds now, against its limits."""

    items: int
    text_bytes: int
    audio_bytes: int


@attrs.define(eq=False)
class _Node:
    stored: StoredItem
    prev: _Node | None = None
    next: _Node | None = None


class Conversation:
    """The session's default conversation and its handlers."""

    def __init__(
        self, outbox: Outbox, config: SessionConfig, limits: ConversationLimits | None = None
    ) -> None:
        self._outbox = outbox
        self._config = config
        self.limits = limits or ConversationLimits()
        self._nodes: dict[str, _Node] = {}
        self._head: _Node | None = None
        self._tail: _Node | None = None
        self._answers: dict[str, str] = {}  # approval request id -> the response item's id
        self._text_bytes = 0
        self._audio_bytes = 0
        # Items holding audio, oldest first: the ones whose audio goes first.
        self._with_audio: collections.OrderedDict[str, StoredItem] = collections.OrderedDict()

    # --- the store ----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[StoredItem]:
        node = self._head
        while node is not None:
            yield node.stored
            node = node.next

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._nodes

    def items(self) -> list[ConversationItem]:
        """The items in order, as a response's brain reads them (audio understood)."""
        return [stored.understood() for stored in self]

    def get(self, item_id: str) -> StoredItem | None:
        node = self._nodes.get(item_id)
        return node.stored if node is not None else None

    def require(self, item_id: str, param: str = "item_id") -> StoredItem:
        """The item with this id.

        Raises:
            RequestError: ``item_not_found``, naming ``param``.
        """
        node = self._nodes.get(item_id)
        if node is None:
            raise RequestError(
                f"Item with item_id not found: {item_id}", code="item_not_found", param=param
            )
        return node.stored

    def last_id(self) -> str | None:
        return self._tail.stored.id if self._tail is not None else None

    def previous_id(self, item_id: str) -> str | None:
        node = self._nodes.get(item_id)
        prev = node.prev if node is not None else None
        return prev.stored.id if prev is not None else None

    def answer_to(self, request_id: str) -> str | None:
        """The id of the ``mcp_approval_response`` that answers a request, if any."""
        return self._answers.get(request_id)

    def statistics(self) -> ConversationStatistics:
        return ConversationStatistics(
            items=len(self._nodes), text_bytes=self._text_bytes, audio_bytes=self._audio_bytes
        )

    async def add(self, stored: StoredItem, after: str | None, *, done: bool = True) -> None:
        """Inserts an item after ``after`` (None: first) and announces it.

        ``done=False`` announces only ``conversation.item.added``: the item is
        still being produced, and :meth:`finish` announces it done later.
        """
        node = _Node(stored)
        prev = self._nodes.get(after) if after is not None else None
        if prev is None:
            node.next, self._head = self._head, node
        else:
            node.prev, node.next, prev.next = prev, prev.next, node
        if node.next is not None:
            node.next.prev = node
        else:
            self._tail = node
        self._nodes[stored.id] = node
        self._account(stored, +1)
        shown = stored.item
        await self._outbox.emit(
            ConversationItemAdded(
                event_id=self._outbox.new_id("event"), item=shown, previous_item_id=after
            )
        )
        if done:
            await self._outbox.emit(
                ConversationItemDone(
                    event_id=self._outbox.new_id("event"), item=shown, previous_item_id=after
                )
            )
        self._bound_audio()
        await self._bound_items(keep=node)

    async def finish(self, stored: StoredItem, item: ConversationItem) -> None:
        """Replaces a stored item with its final form and announces it done."""
        if stored.id not in self._nodes:
            return  # deleted meanwhile: nothing left to announce
        self.replace(stored, item)
        await self._outbox.emit(
            ConversationItemDone(
                event_id=self._outbox.new_id("event"),
                item=item,
                previous_item_id=self.previous_id(stored.id),
            )
        )

    def replace(self, stored: StoredItem, item: ConversationItem) -> None:
        """Changes what a stored item holds (its id stays)."""
        self._restate(stored, item=item)

    def hear(self, stored: StoredItem, text: str) -> None:
        """Records what the model understood of an item's audio (counted as its text)."""
        self._restate(stored, heard=text)

    def _restate(
        self, stored: StoredItem, *, item: ConversationItem | None = None, heard: str | None = None
    ) -> None:
        counted = stored.id in self._nodes
        if counted:
            self._text_bytes -= stored.text_bytes
        if item is not None:
            stored.item = item
        if heard is not None:
            stored.heard = heard
        if counted:
            self._text_bytes += stored.text_bytes
        stored.changed()

    def append_audio(self, stored: StoredItem, index: int, data: bytes) -> None:
        """Adds streamed audio to an item; nothing once it was truncated or dropped."""
        if stored.truncated or stored.audio_dropped or stored.id not in self._nodes:
            return
        stored.audio.setdefault(index, bytearray()).extend(data)
        stored.changed()
        self._audio_bytes += len(data)
        self._with_audio.setdefault(stored.id, stored)
        self._bound_audio()

    def remove(self, item_id: str) -> StoredItem:
        """Takes an item out of the conversation.

        Raises:
            RequestError: ``item_not_found``.
        """
        self.require(item_id)
        node = self._nodes.pop(item_id)
        if node.prev is not None:
            node.prev.next = node.next
        else:
            self._head = node.next
        if node.next is not None:
            node.next.prev = node.prev
        else:
            self._tail = node.prev
        self._account(node.stored, -1)
        return node.stored

    def _account(self, stored: StoredItem, sign: int) -> None:
        self._text_bytes += sign * stored.text_bytes
        self._audio_bytes += sign * stored.audio_bytes
        item = stored.item
        if sign > 0:
            if stored.audio:
                self._with_audio[stored.id] = stored
            if isinstance(item, RealtimeMcpApprovalResponse):
                self._answers[item.approval_request_id] = stored.id
        else:
            self._with_audio.pop(stored.id, None)
            if isinstance(item, RealtimeMcpApprovalResponse):
                self._answers.pop(item.approval_request_id, None)

    def _bound_audio(self) -> None:
        while self._audio_bytes > self.limits.max_audio_bytes and self._with_audio:
            _, oldest = self._with_audio.popitem(last=False)
            self._audio_bytes -= oldest.audio_bytes
            oldest.audio.clear()
            oldest.audio_dropped = True
            oldest.changed()

    async def _bound_items(self, *, keep: _Node) -> None:
        limits = self.limits
        while len(self._nodes) > limits.max_items or self._text_bytes > limits.max_text_bytes:
            victim = self._head if self._head is not keep else keep.next
            if victim is None:
                return  # the new item alone is over the text bound: it stays
            oldest = self.remove(victim.stored.id)
            await self._outbox.emit(
                ConversationItemDeletedEvent(
                    event_id=self._outbox.new_id("event"), item_id=oldest.id
                )
            )

    # --- handlers -----------------------------------------------------------------------

    async def create(self, event: ConversationItemCreateEvent) -> None:
        """``conversation.item.create``: checks the client's item and inserts it.

        ``previous_item_id`` absent: at the end; ``"root"``: first; an id: after
        that item, which must exist.
        """
        stored = accept_client_item(
            event.item,
            "item",
            conversation=self,
            new_id=self._outbox.new_id,
            input_format=wire_format(self._config.audio_input.format),
        )
        previous = event.previous_item_id
        if previous in (UNSET, None):
            after = self.last_id()
        elif previous == "root":
            after = None
        else:
            assert isinstance(previous, str)
            if previous not in self._nodes:
                raise RequestError(
                    f"Error adding item: the previous item with id '{previous}' does not exist.",
                    code="item_not_found",
                    param="previous_item_id",
                )
            after = previous
        await self.add(stored, after)

    async def delete(self, event: ConversationItemDeleteEvent) -> None:
        """``conversation.item.delete``: removes the item; ``item_not_found`` otherwise."""
        self.remove(event.item_id)
        await self._outbox.emit(
            ConversationItemDeletedEvent(
                event_id=self._outbox.new_id("event"), item_id=event.item_id
            )
        )

    async def retrieve(self, event: ConversationItemRetrieveEvent) -> None:
        """``conversation.item.retrieve``: the item, with its audio as base64."""
        stored = self.require(event.item_id)
        await self._outbox.emit(
            ConversationItemRetrieved(
                event_id=self._outbox.new_id("event"), item=stored.with_audio()
            )
        )

    async def truncate(self, event: ConversationItemTruncateEvent) -> None:
        """``conversation.item.truncate``: keeps an assistant message's audio up to
        ``audio_end_ms`` and deletes its transcript, so the context holds only what
        the user heard. A message still streaming is cut at what has streamed.
        """
        stored = self.require(event.item_id)
        item = stored.item
        if not isinstance(item, RealtimeConversationItemAssistantMessage):
            raise RequestError(
                "Only assistant messages can be truncated.", code="invalid_value", param="item_id"
            )
        index = event.content_index
        if not 0 <= index < len(item.content) or item.content[index].type != "output_audio":
            raise RequestError(
                f"Content part {index} of item {event.item_id} is not an audio part.",
                code="invalid_value",
                param="content_index",
            )
        if stored.audio_dropped:
            raise RequestError(
                f"The audio of item {event.item_id} is no longer kept: this engine keeps at "
                f"most {self.limits.max_audio_bytes} bytes of conversation audio.",
                code="invalid_value",
                param="item_id",
            )
        duration_ms = stored.audio_ms(index)
        if not 0 <= event.audio_end_ms <= duration_ms:
            raise RequestError(
                f"Audio content of {duration_ms}ms is shorter than {event.audio_end_ms}ms.",
                code="invalid_value",
                param="audio_end_ms",
            )
        assert stored.audio_format is not None
        audio = stored.audio.setdefault(index, bytearray())
        cut = stored.audio_format.byte_count(event.audio_end_ms)
        self._audio_bytes -= len(audio) - cut
        del audio[cut:]
        stored.truncated = True
        part = attrs.evolve(item.content[index], transcript="")
        self.replace(stored, _with_part(item, index, part))
        await self._outbox.emit(
            ConversationItemTruncatedEvent(
                event_id=self._outbox.new_id("event"),
                item_id=event.item_id,
                content_index=index,
                audio_end_ms=event.audio_end_ms,
            )
        )


def _with_part(item: Any, index: int, part: Any) -> Any:
    """A message with one content part replaced."""
    return attrs.evolve(item, content=[*item.content[:index], part, *item.content[index + 1 :]])
