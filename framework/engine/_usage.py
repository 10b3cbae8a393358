"""Usage and rate limits: what each response reports it cost.

Tokens are counted deterministically, so tests can assert them: a text token
is a word or a punctuation mark; an audio token is 50 ms of audio, in either
direction. Input tokens are the instructions and the response's context;
cached tokens are what the previous in-conversation response read, in whole
blocks of 64 (the hosted API caches by prefix). ``rate_limits.updated``, sent
at the start of every response, counts the session's requests down from the
hosted API's default tier.
"""

from __future__ import annotations

import math
import re

import attrs

from framework.protocol import (
    ConversationItem,
    RateLimit,
    RateLimitsUpdatedEvent,
    RealtimeConversationItemAssistantMessage,
    RealtimeConversationItemFunctionCall,
    RealtimeConversationItemFunctionCallOutput,
    RealtimeConversationItemSystemMessage,
    RealtimeConversationItemUserMessage,
    RealtimeMcpApprovalRequest,
    RealtimeMcpListTools,
    RealtimeMcpToolCall,
    RealtimeResponseUsage,
    RealtimeResponseUsageInputTokenDetails,
    RealtimeResponseUsageOutputTokenDetails,
)

_TOKEN = re.compile(r"\w+|[^\w\s]")
AUDIO_TOKENS_PER_S = 20
"""One audio token per 50 ms, both directions."""
_REQUESTS_PER_MINUTE = 5000
_TOKENS_PER_MINUTE = 40000


def text_tokens(text: str) -> int:
    """Deterministic token count of a text: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def audio_tokens(ms: int) -> int:
    """Tokens of ``ms`` milliseconds of audio."""
    return math.ceil(ms * AUDIO_TOKENS_PER_S / 1000)


def item_text(item: ConversationItem) -> str:
    """The text of an item as the model reads it (for token counts and sizes)."""
    if isinstance(
        item,
        (
            RealtimeConversationItemSystemMessage,
            RealtimeConversationItemUserMessage,
            RealtimeConversationItemAssistantMessage,
        ),
    ):
        parts = []
        for part in item.content:
            for name in ("text", "transcript"):
                value = getattr(part, name, None)
                if isinstance(value, str):
                    parts.append(value)
        return " ".join(parts)
    if isinstance(item, RealtimeConversationItemFunctionCall):
        return f"{item.name} {item.arguments}"
    if isinstance(item, RealtimeConversationItemFunctionCallOutput):
        return item.output
    if isinstance(item, RealtimeMcpToolCall):
        result = item.output if isinstance(item.output, str) else ""
        return f"{item.name} {item.arguments} {result}"
    if isinstance(item, RealtimeMcpApprovalRequest):
        return f"{item.name} {item.arguments}"
    if isinstance(item, RealtimeMcpListTools):
        return " ".join(t.name for t in item.tools)
    return ""


@attrs.frozen
class InputTokens:
    """What a response read: text (instructions and items) and audio tokens."""

    text: int
    audio: int

    @property
    def total(self) -> int:
        return self.text + self.audio


@attrs.define
class SessionUsage:
    """The session's counters behind usage and rate limits."""

    requests: int = 0
    """Responses started: each one is a request against the rate limit."""
    last_input: int = 0
    """Input tokens of the last in-conversation response (the cacheable prefix)."""

    def rate_limits(self, event_id: str) -> RateLimitsUpdatedEvent:
        """Counts one more request; the event that reports it."""
        self.requests += 1
        return RateLimitsUpdatedEvent(
            event_id=event_id,
            rate_limits=[
                RateLimit(
                    name="requests",
                    limit=_REQUESTS_PER_MINUTE,
                    remaining=max(0, _REQUESTS_PER_MINUTE - self.requests),
                    reset_seconds=0.012,
                ),
                RateLimit(
                    name="tokens",
                    limit=_TOKENS_PER_MINUTE,
                    remaining=_TOKENS_PER_MINUTE - 4096,  # the output reservation
                    reset_seconds=6.144,
                ),
            ],
        )

    def usage(
        self,
        read: InputTokens,
        *,
        output_text: int,
        output_audio: int,
        in_conversation: bool,
    ) -> RealtimeResponseUsage:
        """The usage a finished response reports; an in-conversation one becomes the
        next response's cached prefix."""
        cached = min(self.last_input, read.total) // 64 * 64
        if in_conversation:
            self.last_input = read.total
        return RealtimeResponseUsage(
            total_tokens=read.total + output_text + output_audio,
            input_tokens=read.total,
            output_tokens=output_text + output_audio,
            input_token_details=RealtimeResponseUsageInputTokenDetails(
                text_tokens=read.text,
                audio_tokens=read.audio,
                image_tokens=0,
                cached_tokens=cached,
            ),
            output_token_details=RealtimeResponseUsageOutputTokenDetails(
                text_tokens=output_text, audio_tokens=output_audio
            ),
        )
