"""Client events: everything a client sends to a Realtime server.

Every event may carry an ``event_id`` chosen by the client; the server echoes
it in the ``error`` event when the event fails (never in the success reply).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

import attrs

from ._base import UNSET, UnknownClientEvent, Unset, WireObject
from ._items import ConversationItem
from ._legacy import TranscriptionSessionUpdate
from ._response import RealtimeResponseCreateParams
from ._session import SessionConfig


@attrs.frozen(kw_only=True, repr=False)
class SessionUpdateEvent(WireObject):
    """Changes the session: only the fields present in ``session`` change."""

    type: Literal["session.update"] = "session.update"
    session: SessionConfig
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferAppendEvent(WireObject):
    """Appends base64 audio, in the session's input format, to the input buffer."""

    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferCommitEvent(WireObject):
    """Turns the input buffer into a user message (manual turns)."""

    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class InputAudioBufferClearEvent(WireObject):
    """Drops the audio in the input buffer."""

    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class OutputAudioBufferClearEvent(WireObject):
    """Cuts off the audio being played (WebRTC and SIP connections only)."""

    type: Literal["output_audio_buffer.clear"] = "output_audio_buffer.clear"
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemCreateEvent(WireObject):
    """Adds an item to the conversation, at the end or after ``previous_item_id``."""

    type: Literal["conversation.item.create"] = "conversation.item.create"
    item: ConversationItem
    previous_item_id: str | Unset | None = UNSET
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemRetrieveEvent(WireObject):
    """Asks for the server's copy of an item, audio included."""

    type: Literal["conversation.item.retrieve"] = "conversation.item.retrieve"
    item_id: str
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemTruncateEvent(WireObject):
    """Cuts an assistant audio item at the point the user actually heard."""

    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int
    audio_end_ms: int
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ConversationItemDeleteEvent(WireObject):
    """Removes an item from the conversation."""

    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseCreateEvent(WireObject):
    """Asks the model for a response, optionally with per-response overrides."""

    type: Literal["response.create"] = "response.create"
    response: RealtimeResponseCreateParams | Unset | None = UNSET
    event_id: str | Unset | None = UNSET


@attrs.frozen(kw_only=True, repr=False)
class ResponseCancelEvent(WireObject):
    """Cancels the active response (or the one named by ``response_id``)."""

    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | Unset | None = UNSET
    event_id: str | Unset | None = UNSET


RealtimeClientEvent: TypeAlias = (
    ConversationItemCreateEvent
    | ConversationItemDeleteEvent
    | ConversationItemRetrieveEvent
    | ConversationItemTruncateEvent
    | InputAudioBufferAppendEvent
    | InputAudioBufferClearEvent
    | OutputAudioBufferClearEvent
    | InputAudioBufferCommitEvent
    | ResponseCancelEvent
    | ResponseCreateEvent
    | SessionUpdateEvent
)
"""The client events of the GA protocol, tagged on ``type``."""

ClientEvent: TypeAlias = RealtimeClientEvent | TranscriptionSessionUpdate | UnknownClientEvent
"""What ``parse_client_event`` returns: a GA event, the legacy transcription
update, or an unknown event kept whole."""
