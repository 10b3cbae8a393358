"""A phone receptionist, over Twilio Media Streams or SIP: a whole call offline, one command.

The agent (:class:`Receptionist`, a :class:`~framework.telephony.PhoneAgent`)
greets the caller, answers with a tool, reads a patient number from the
keypad, transfers to the front desk, and hangs up once its goodbye has been
heard; its instructions use the caller's number. The local engine stands in
for the model (``phone_receptionist.toml`` is its script) and the carrier is
simulated, so it runs offline. From the repository root::

    .venv/bin/python examples/phone_receptionist.py
    .venv/bin/python examples/phone_receptionist.py --sip

The first plays a Twilio call, the second a SIP call (the Realtime Calls API).

* **Twilio**: ``framework.telephony.dial`` plays Twilio: it POSTs the signed
  voice webhook, opens the Media Stream the TwiML names, speaks the caller's
  lines in real time as G.711 mu-law frames (synthesized offline with
  espeak-ng and heard by pocketsphinx), presses keys, and acknowledges marks
  after a playout delay.
* **SIP**: the engine's operator interface rings a simulated SIP call and
  POSTs the signed ``realtime.call.incoming`` webhook; the phone server
  accepts it and attaches by ``call_id``. The engine's simulated trunk
  carries no caller audio, so the caller's lines go in as text; keys go in
  through the operator interface, as a SIP caller's DTMF.

On a real number the same :class:`PhoneServer` serves Twilio or SIP (see the
README, "Answering the phone").
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from types import MappingProxyType

import httpx2
import numpy as np
import trio

from framework.audio import pcm16_to_ulaw
from framework.engine import Engine, OperatorClient, Rules, new_webhook_secret, open_engine
from framework.protocol import AudioTranscription
from framework.runtime import (
    AssistantMessage,
    Session,
    ToolCallFinished,
    ToolCallStarted,
    UserTranscript,
)
from framework.telephony import (
    PhoneAgent,
    PhoneCall,
    PhoneServer,
    TwilioCaller,
    current_phone_call,
    dial,
    open_phone_server,
)
from framework.testing import run_engine
from framework.tools import tool
from plugins.speech import EspeakSynthesizer, PocketsphinxTranscriber

RULES = Path(__file__).with_name("phone_receptionist.toml")
FRONT_DESK = "sip:frontdesk@dental.example"


class Receptionist(PhoneAgent):
    """Answers the phone at a dental practice."""

    greeting = "Thanks for calling Acme Dental. How can I help?"
    transfer_targets = MappingProxyType({"front desk": FRONT_DESK})
    transcription = AudioTranscription(model="gpt-4o-mini-transcribe")

    def instructions(self, session: Session | None = None) -> str:  # type: ignore[override]
        """What the model is told: it knows who is calling."""
        call = current_phone_call()
        caller = call.caller if call is not None else None
        return (
            "You answer the phone for Acme Dental. Be brief and warm. "
            f"The caller's number is {caller or 'unknown'}. Say goodbye before ending the call."
        )

    @tool
    async def opening_hours(self) -> str:
        """The practice's opening hours."""
        return "Monday to Friday, from nine to five"

    @tool(timeout=60)
    async def read_patient_number(self) -> str:
        """Reads the caller's patient number from the keypad (ended by the hash key)."""
        digits = await self.call.collect_digits(end="#", key_timeout=10)
        return digits or "not given"


LINES = (
    "What are your opening hours",
    "I want to check my appointment",
    "Put me through to the front desk",
    "Thank you that is all goodbye",
)
TWILIO_LINES = (LINES[0], LINES[1], LINES[3])
AUTH_TOKEN = "offline-demo-token"


async def show(call: PhoneCall) -> None:
    """Prints the call as the agent sees it (the server runs this for each call)."""
    print(f"call:      {call.carrier} {call.id} from {call.caller}")
    assert call.session is not None
    async for event in call.session:
        if isinstance(event, UserTranscript) and event.final:
            print(f"heard:     {event.text}")
        elif isinstance(event, ToolCallFinished):
            print(f"tool:      {event.name}({event.arguments}) -> {event.output!r}")
        elif isinstance(event, AssistantMessage):
            print(f"assistant: {event.text}")


# --- Twilio ---------------------------------------------------------------------------------


def caller_line(voice: EspeakSynthesizer, text: str) -> bytes:
    """What the caller says, as Twilio carries it: mu-law at 8 kHz, then a pause."""
    samples = voice.synthesize_blocking(text, rate=8000, voice="ash")
    pause = np.zeros(8000, dtype=np.int16)
    return pcm16_to_ulaw(np.concatenate([samples, pause]).astype("<i2").tobytes())


async def until_quiet(caller: TwilioCaller) -> None:
    """Waits until the caller has heard nothing new for a moment (the agent is done)."""
    while True:
        heard = len(caller.heard)
        await trio.sleep(1.2)
        if len(caller.heard) == heard:
            return


async def twilio_call() -> None:
    voice = EspeakSynthesizer()
    ears = PocketsphinxTranscriber(grammar=TWILIO_LINES)
    async with run_engine(rules=RULES, transcriber=ears, latency_ms=10) as url:
        server = PhoneServer(
            agent=Receptionist, url=url, twilio_auth_token=AUTH_TOKEN, on_call=show
        )
        async with open_phone_server(server) as phone:
            print(f"phone:     Twilio's voice webhook is {phone}/twilio/voice")
            async with dial(phone, auth_token=AUTH_TOKEN) as caller:
                for text in TWILIO_LINES:
                    await until_quiet(caller)
                    print(f"caller:    says {text!r}")
                    await caller.say(caller_line(voice, text))
                    if "appointment" in text:
                        await until_quiet(caller)  # the prompt to type
                        print("caller:    presses 4821#")
                        await caller.press("4821#")
                await caller.ended.wait()
            hung_up = "<Hangup" in caller.next_twiml
            print(
                f"ended:     {'hung up by the agent' if hung_up else caller.next_twiml}; "
                f"the caller heard {len(caller.heard) / 8000:.1f} s of speech"
            )
            await server.wait_until(lambda s: not s.calls)


# --- SIP --------------------------------------------------------------------------------------


async def sip_call() -> None:
    secret = new_webhook_secret()
    engine = Engine(rules=Rules.from_file(RULES), webhook_secret=secret, latency_ms=10)
    async with open_engine(engine) as running:
        server = PhoneServer(
            agent=Receptionist, url=running.url, webhook_secret=secret, on_call=show
        )
        async with open_phone_server(server) as phone, httpx2.AsyncClient() as http:
            # The engine announces each call it rings to the phone server, signed.
            engine.webhook_url = phone + "/sip/webhook"
            print(f"phone:     the SIP webhook is {engine.webhook_url}")
            operator = OperatorClient(http, running.http_url.removesuffix("/v1"), api_key=None)
            rung = await operator.ring(caller="sip:+14155550123@carrier.example")
            call = server.calls[rung["call_id"]]
            await call.answered.wait()
            assert call.session is not None
            asks_for_keys = trio.Event()
            call.session.observe(
                lambda e: asks_for_keys.set() if isinstance(e, ToolCallStarted) else None
            )
            for text in LINES:
                await until_said(call)
                print(f"caller:    says {text!r} (as text: the simulated trunk has no audio)")
                await call.session.send_text(text)
                if "appointment" in text:
                    await asks_for_keys.wait()
                    await call.wait_played()  # the prompt to type
                    print("caller:    presses 4821#")
                    await operator.dtmf(call.id, "4821#")
            await call.ended.wait()
            state = engine.rest.calls[call.id]
            print(f"ended:     {call.end_reason}; transferred to {state.referred_to}")
            await server.wait_until(lambda s: not s.calls)


async def until_said(call: PhoneCall) -> None:
    """Waits until the agent has finished speaking and its words have played."""
    assert call.session is not None
    await call.session.wait_quiet()
    await call.wait_played()


async def main() -> None:
    started = time.perf_counter()
    await (sip_call() if "--sip" in sys.argv[1:] else twilio_call())
    print(f"done in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        trio.run(main)
