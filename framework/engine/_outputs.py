"""A response's message and function-call outputs, each streamed by its own object.

A message streams its text as ``response.output_text.delta`` events, or its
speech as ``response.output_audio.delta`` chunks of :data:`AUDIO_CHUNK_MS`
with the transcript keeping pace (words in proportion to time). What it has
streamed is recorded only once its event is queued: a cancel landing inside
an emit means that delta never left, and the done events and the stored item
hold exactly what the client got. In the conversation, a message's audio is
stored as it streams, so a client can truncate it before it is done; a
truncated message keeps the cut and an empty transcript when it closes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import attrs

from framework.protocol import (
    AssistantMessageContent,
    ContentPart,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    ResponseAudioDeltaEvent,
    ResponseAudioDoneEvent,
    ResponseAudioTranscriptDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)

from ._audio import b64
from ._brain import CallFunction
from ._stored_item import StoredItem
from ._usage import audio_tokens, text_tokens

if TYPE_CHECKING:
    from ._response import Response

AUDIO_CHUNK_MS = 100
ARGUMENT_CHUNK = 16
"""Characters of arguments per delta event."""
_MS_PER_CHAR = 60  # the tone synthesizer's pace, to estimate audio cost before synthesis


@attrs.define(kw_only=True, eq=False)
class MessageOutput:
    """An assistant message being streamed: text, or audio with its transcript."""

    response: Response
    index: int
    item: RealtimeConversationItemAssistantMessage
    stored: StoredItem | None
    audio: bool
    text: str = ""
    streamed_bytes: int = 0

    def _base(self) -> dict[str, Any]:
        return {
            "response_id": self.response.id,
            "item_id": self.item.id,
            "output_index": self.index,
            "content_index": 0,
        }

    async def stream(self, text: str) -> None:
        """Streams the message's one content part."""
        outbox = self.response.services.outbox
        part = (
            ContentPart(type="audio", transcript="")
            if self.audio
            else ContentPart(type="text", text="")
        )
        await outbox.emit(
            ResponseContentPartAddedEvent(
                event_id=outbox.new_id("event"), part=part, **self._base()
            )
        )
        if self.stored is not None:
            # The stored item shows the part as it grows (retrieve, truncate).
            content = _content(self.audio, "")
            self.response.services.conversation.replace(
                self.stored, attrs.evolve(self.item, content=[content])
            )
        if self.audio:
            await self._stream_audio(text)
            return
        for n, word in enumerate(text.split(" ") if text else []):
            delta = word if n == 0 else " " + word
            await outbox.emit(
                ResponseTextDeltaEvent(event_id=outbox.new_id("event"), delta=delta, **self._base())
            )
            self.text += delta

    async def _stream_audio(self, text: str) -> None:
        response = self.response
        services = response.services
        outbox = services.outbox
        fmt = response.params.fmt
        samples = await services.synthesizer.synthesize(
            text, rate=fmt.rate, voice=response.params.voice_name
        )
        audio = fmt.encode(samples)
        chunk = fmt.byte_count(AUDIO_CHUNK_MS)
        chunks = [audio[i : i + chunk] for i in range(0, len(audio), chunk)] or [b""]
        words = text.split(" ") if text else []
        said = 0
        for n, piece in enumerate(chunks):
            await outbox.emit(
                ResponseAudioDeltaEvent(
                    event_id=outbox.new_id("event"), delta=b64(piece), **self._base()
                )
            )
            self.streamed_bytes += len(piece)
            services.audio_produced = True
            if self.stored is not None:
                services.conversation.append_audio(self.stored, 0, piece)
            # The transcript keeps pace with the audio: words in proportion to time.
            due = math.ceil(len(words) * (n + 1) / len(chunks))
            while said < due:
                delta = words[said] if said == 0 else " " + words[said]
                said += 1
                await outbox.emit(
                    ResponseAudioTranscriptDeltaEvent(
                        event_id=outbox.new_id("event"), delta=delta, **self._base()
                    )
                )
                self.text += delta

    async def close(self, status: str) -> None:
        """The part's and the item's done events; the stored message keeps its truncation."""
        response = self.response
        outbox = response.services.outbox
        base = self._base()
        text = self.text
        if self.audio:
            fmt = response.params.fmt
            ms = fmt.ms(self.streamed_bytes // fmt.bytes_per_sample)
            response.audio_ms += ms
            response.output_tokens_audio += audio_tokens(ms)
            await outbox.emit(ResponseAudioDoneEvent(event_id=outbox.new_id("event"), **base))
            await outbox.emit(
                ResponseAudioTranscriptDoneEvent(
                    event_id=outbox.new_id("event"), transcript=text, **base
                )
            )
            part = ContentPart(type="audio", transcript=text)
        else:
            await outbox.emit(
                ResponseTextDoneEvent(event_id=outbox.new_id("event"), text=text, **base)
            )
            part = ContentPart(type="text", text=text)
        response.output_tokens_text += text_tokens(text)
        await outbox.emit(
            ResponseContentPartDoneEvent(event_id=outbox.new_id("event"), part=part, **base)
        )
        # What the user never heard does not stay: a truncated message loses its transcript.
        truncated = self.stored is not None and self.stored.truncated
        content = _content(self.audio, "" if truncated else text)
        done = attrs.evolve(self.item, status=status, content=[content])
        await response.finish_output(self.index, done, self.stored)


def _content(audio: bool, text: str) -> AssistantMessageContent:
    if audio:
        return AssistantMessageContent(type="output_audio", transcript=text)
    return AssistantMessageContent(type="output_text", text=text)


def _cost(text: str, audio: bool) -> int:
    """Output tokens a message of this text will cost (its audio estimated from its length)."""
    tokens = text_tokens(text)
    if audio:
        tokens += audio_tokens(_MS_PER_CHAR * len(text))
    return tokens


async def stream_message(response: Response, text: str) -> None:
    """Streams one assistant message, cut to what the token budget allows."""
    audio = response.params.audio_out
    budget = response.params.budget
    if budget is not None:
        words = text.split(" ")
        while words and _cost(" ".join(words), audio) + response.spent > budget:
            words.pop()
            response.incomplete_reason = "max_output_tokens"
        text = " ".join(words)
    outbox = response.services.outbox
    item = RealtimeConversationItemAssistantMessage(
        id=outbox.new_id("item"), object="realtime.item", status="in_progress", content=[]
    )
    index, stored = await response.add_output(item)
    message = MessageOutput(response=response, index=index, item=item, stored=stored, audio=audio)
    response.open = message
    await message.stream(text)
    await response.close_open("completed")


@attrs.define(kw_only=True, eq=False)
class FunctionCallOutput:
    """A function call being streamed: its arguments, in deltas."""

    response: Response
    index: int
    item: RealtimeConversationItemFunctionCall
    stored: StoredItem | None
    arguments: str = ""

    def _base(self) -> dict[str, Any]:
        return {
            "response_id": self.response.id,
            "item_id": self.item.id,
            "output_index": self.index,
            "call_id": self.item.call_id,
        }

    async def stream(self, arguments: str) -> None:
        outbox = self.response.services.outbox
        for start in range(0, len(arguments), ARGUMENT_CHUNK):
            delta = arguments[start : start + ARGUMENT_CHUNK]
            await outbox.emit(
                ResponseFunctionCallArgumentsDeltaEvent(
                    event_id=outbox.new_id("event"), delta=delta, **self._base()
                )
            )
            self.arguments += delta
        self.response.output_tokens_text += text_tokens(arguments) + 2

    async def close(self, status: str) -> None:
        outbox = self.response.services.outbox
        await outbox.emit(
            ResponseFunctionCallArgumentsDoneEvent(
                event_id=outbox.new_id("event"),
                name=self.item.name,
                arguments=self.arguments,
                **self._base(),
            )
        )
        done = attrs.evolve(self.item, arguments=self.arguments, status=status)
        await self.response.finish_output(self.index, done, self.stored)


async def stream_call(response: Response, call: CallFunction) -> None:
    """Streams one function call; the client runs it and sends its output."""
    outbox = response.services.outbox
    call_id = outbox.new_id("call")
    response.remember(call_id, call.context)
    item = RealtimeConversationItemFunctionCall(
        id=outbox.new_id("item"),
        object="realtime.item",
        status="in_progress",
        name=call.name,
        call_id=call_id,
        arguments="",
    )
    index, stored = await response.add_output(item)
    output = FunctionCallOutput(response=response, index=index, item=item, stored=stored)
    response.open = output
    await output.stream(call.arguments)
    await response.close_open("completed")
