"""Responses in a session: creating, cancelling, and answering turns.

Handlers here: ``response.create`` and ``response.cancel``. The default
conversation has at most one response in progress; another create is refused
with ``conversation_already_has_active_response``, while out-of-band
responses (``conversation: "none"``) may run beside it. Each response runs in
a task of its own (:class:`._response.Response`).

Turn detection asks for responses too: a VAD turn that ends is answered
(unless ``create_response`` is false), and speech that starts cancels the
response in progress (unless ``interrupt_response`` is false). A turn that
ends while a cancelled response is still closing (a barge-in faster than the
cancel) is answered as soon as that response is done; speech that starts
again meanwhile supersedes it, and its own end is answered instead.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

from framework.protocol import (
    RealtimeResponseCreateParams,
    ResponseCancelEvent,
    ResponseCreateEvent,
)

from ._audio import wire_format
from ._config import RequestError
from ._outbox import Spawn
from ._response import Response, ResponseServices
from ._response_params import resolve_params
from ._session_config import SessionConfig


class ResponseObserver(Protocol):
    """Who hears of the default conversation's responses starting and ending."""

    def response_started(self) -> None:
        """A response began (the user's silence no longer counts)."""
        ...

    def response_done(self, playback_ms: int) -> None:
        """A response ended; its audio plays for ``playback_ms`` more."""
        ...


class Responses:
    """The session's responses, and the one in progress in the default conversation."""

    def __init__(
        self,
        *,
        config: SessionConfig,
        services: ResponseServices,
        observer: ResponseObserver,
        spawn: Spawn,
    ) -> None:
        self._config = config
        self.services = services
        self._observer = observer
        self._spawn = spawn
        self.active: Response | None = None
        """The response in progress in the default conversation."""
        self._running: dict[str, Response] = {}
        self._turn_waiting = False  # a VAD turn to answer once the cancelled reply is done

    @property
    def busy(self) -> bool:
        return self.active is not None

    # --- handlers ---------------------------------------------------------------------

    async def create(self, event: ResponseCreateEvent) -> None:
        """``response.create``: starts a response (refused in a transcription session)."""
        if self._config.transcription:
            raise RequestError(
                "Responses are not supported in transcription sessions: a session of type "
                "'transcription' only transcribes input audio. Open a realtime session to "
                "generate responses.",
                code="invalid_value",
                param="type",
            )
        params = event.response
        await self.start(params if isinstance(params, RealtimeResponseCreateParams) else None)

    async def cancel(self, event: ResponseCancelEvent) -> None:
        """``response.cancel``: cancels the given response, or the default one in progress."""
        if isinstance(event.response_id, str):
            response = self._running.get(event.response_id)
        else:
            response = self.active
        if response is None or response.closing:
            raise RequestError(
                "Cancellation failed: no active response found", code="response_cancel_not_active"
            )
        response.cancel("client_cancelled")

    # --- turns ------------------------------------------------------------------------

    def barge_in(self) -> None:
        """Speech started: it cancels the response in progress, if the session says so."""
        # A turn that ended while the last reply was closing is superseded by this one.
        self._turn_waiting = False
        if self.active is not None and self._config.barge_in:
            self.active.cancel("turn_detected")

    async def answer_turn(self) -> bool:
        """A VAD turn ended; False when a response still in progress leaves it unanswered."""
        active = self.active
        if active is None:
            await self.start(None)
            return True
        if active.closing:
            # The barge-in's reply is still closing: answer once it is done.
            self._turn_waiting = True
            return True
        return False

    async def prompt(self) -> None:
        """Asks for a response after an idle timeout (none if one began meanwhile)."""
        with contextlib.suppress(RequestError):
            await self.start(None)

    # --- running ----------------------------------------------------------------------

    async def start(self, params: RealtimeResponseCreateParams | None) -> None:
        """Checks the parameters and starts the response in a task of its own.

        Raises:
            RequestError: invalid parameters, or a response already in progress.
        """
        services = self.services
        resolved = resolve_params(
            params or RealtimeResponseCreateParams(),
            config=self._config,
            conversation=services.conversation,
            new_id=services.outbox.new_id,
            input_format=wire_format(self._config.audio_input.format),
        )
        if resolved.in_conversation and self.active is not None:
            raise RequestError(
                "Conversation already has an active response in progress: "
                f"{self.active.id}. Wait until the response is finished before creating "
                "a new one.",
                code="conversation_already_has_active_response",
            )
        response = Response(id=services.outbox.new_id("resp"), params=resolved, services=services)
        self._running[response.id] = response
        if resolved.in_conversation:
            self.active = response
            self._observer.response_started()
        if resolved.tools_given:
            await services.mcp.offer(resolved.tools, "response.tools")
        self._spawn(self._run, response)

    async def _run(self, response: Response) -> None:
        try:
            await response.run()
        finally:
            self._running.pop(response.id, None)
            if self.active is response:
                self.active = None
        if not response.params.in_conversation:
            return
        self._observer.response_done(response.audio_ms)
        if self._turn_waiting:
            self._turn_waiting = False
            with contextlib.suppress(RequestError):  # the client's own response came first
                await self.start(None)
