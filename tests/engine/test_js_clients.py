"""The JS realtime clients, unchanged, under node, as the engine's clients.

``@openai/agents-realtime`` (``RealtimeSession`` on its WebSocket transport,
pointed at the engine by URL, its model named only in ``session.update``) and
the ``openai`` package's ``OpenAIRealtimeWS`` (which dials only ``wss://``: the
engine serves TLS with a certificate from a throwaway authority that node is
told to trust). Each flow is a script under ``js/`` that prints what its client
showed; the packages come from the committed lock file (``npm ci`` when
``node_modules`` is missing). As in the Python tests, the engine has a
per-event latency so that interrupts land mid-reply, and every frame it sent
is checked off the wire against the official SDK's models.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trustme

from .clients import (
    GREETING,
    SORRY,
    STORY,
    WEATHER_ANSWER,
    WEATHER_QUESTION,
    Served,
    answered_weather,
    barged_in,
    clean,
    cut,
    of_type,
    responses,
    said,
    serve,
    spoken,
    user_texts,
)

JS = Path(__file__).with_name("js")
AGENTS_MODEL = "gpt-realtime-2.1"  # @openai/agents-realtime's default
SECONDS = 40  # one flow, node's start included; each step inside has its own 15 s bound


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the clients installed from the committed lock file."""
    binary = shutil.which("node")
    if binary is None:
        pytest.skip("node is not installed: the JS client tests need node 20 and npm")
    if not (JS / "node_modules").is_dir():
        print(f"installing the JS clients: npm ci in {JS}")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=600)
    return binary


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[trustme.CA, str, str, str]]:
    """A throwaway authority, the engine's loopback certificate and key, and the
    authority's PEM file for node (``NODE_EXTRA_CA_CERTS``)."""
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    certfile, keyfile, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    certfile.write_bytes(b"".join(pem.bytes() for pem in issued.cert_chain_pems))
    keyfile.write_bytes(issued.private_key_pem.bytes())
    cafile.write_bytes(authority.cert_pem.bytes())
    yield authority, str(certfile), str(keyfile), str(cafile)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The user asking about the weather, as raw PCM16 for the scripts."""
    path = tmp_path_factory.mktemp("speech") / "weather.pcm"
    path.write_bytes(spoken(WEATHER_QUESTION))
    return str(path)


@pytest.fixture
async def plain() -> AsyncIterator[Served]:
    async with serve() as served:
        yield served


@pytest.fixture
async def secure(tls: tuple[trustme.CA, str, str, str]) -> AsyncIterator[Served]:
    async with serve(tls=tls[:3]) as served:
        yield served


async def run_node(
    node: str, script: str, flow: str, url: str, speech: str, *, cafile: str | None = None
) -> dict[str, Any]:
    """Runs one flow script; its report, once it says the flow went through."""
    env = {**os.environ, "NODE_EXTRA_CA_CERTS": cafile} if cafile else None
    with trio.fail_after(SECONDS):
        done = await trio.run_process(
            [node, script, flow, url, speech],
            cwd=JS,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
    out = done.stdout.decode().strip().splitlines()
    assert out, f"{script} {flow} printed nothing: {done.stderr.decode()[-2000:]}"
    report: dict[str, Any] = json.loads(out[-1])
    assert report["failure"] is None and done.returncode == 0, (report, done.stderr[-2000:])
    assert sdk_events(report, "error") == []
    return report


def seen_by_client(report: dict[str, Any], served: Served) -> None:
    """The client took in every event the engine sent, in order, none refused."""
    assert report["server"] == [e["type"] for e in served.tap.server_events()]


def sdk_events(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in report["sdk"] if e["kind"] == kind]


def configured(wire: list[dict[str, Any]]) -> dict[str, Any]:
    session: dict[str, Any] = of_type(wire, "session.updated")[-1]["session"]
    return session


# --- @openai/agents-realtime -------------------------------------------------------------


async def agents(node: str, flow: str, served: Served, speech: str) -> dict[str, Any]:
    report = await run_node(node, "agents_realtime.mjs", flow, served.url, speech)
    seen_by_client(report, served)
    return report


async def test_agents_text_turn(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "text", plain, speech)
    wire = clean(plain)
    # Configured by its session.update, model included, though the URL named none.
    session = configured(wire)
    assert session["model"] == AGENTS_MODEL
    assert session["instructions"] == "You help people with the weather."
    assert [t["name"] for t in session["tools"]] == ["get_weather", "transfer_to_billing"]
    assert session["output_modalities"] == ["text"]
    (done,) = responses(wire)
    assert said(done) == [GREETING]
    assert report["history"] == [["user", "hello there"], ["assistant", GREETING]]


async def test_agents_tool_turn(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "tool", plain, speech)
    wire = clean(plain)
    assert sdk_events(report, "agent_tool_end") == [
        {"kind": "agent_tool_end", "tool": "get_weather", "output": "sunny"}
    ]
    answered_weather(*responses(wire))
    assert report["history"][-1] == ["assistant", WEATHER_ANSWER]


async def test_agents_handoff(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "handoff", plain, speech)
    wire = clean(plain)
    assert sdk_events(report, "agent_handoff") == [
        {"kind": "agent_handoff", "from": "Triage", "to": "billing"}
    ]
    session = configured(wire)
    assert session["instructions"] == "You refund orders."
    assert [t["name"] for t in session["tools"]] == ["refund_order"]
    assert [said(r) for r in responses(wire)] == [
        [],
        ["Billing here. Which order should I refund?"],
        [],
        ["Done: refunded order 4711."],
    ]
    # zod declared `order` an integer: the captured "4711" arrives as one.
    assert responses(wire)[2]["output"][0]["arguments"] == '{"order": 4711}'


async def test_agents_audio_turn_with_server_vad(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "audio", plain, speech)
    wire = clean(plain)
    (transcript,) = of_type(wire, "conversation.item.input_audio_transcription.completed")
    assert transcript["transcript"] == WEATHER_QUESTION
    answered_weather(*responses(wire))
    assert report["audio_bytes"] > 0
    assert report["history"] == [
        ["user", WEATHER_QUESTION],
        ["assistant", WEATHER_ANSWER],
    ]


async def test_agents_interrupt_mid_reply(node: str, plain: Served, speech: str) -> None:
    """``session.interrupt()`` while the story streams: the SDK cancels the response
    and truncates the item at its playback position."""
    report = await agents(node, "interrupt", plain, speech)
    wire = clean(plain)
    (done,) = responses(wire)
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "client_cancelled"
    cut(plain, wire)
    assert sdk_events(report, "audio_interrupted")


async def test_agents_barge_in(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "barge-in", plain, speech)
    wire = clean(plain)
    barged_in(plain, wire)
    assert report["history"][-1] == ["assistant", WEATHER_ANSWER]


async def test_agents_output_guardrail(node: str, plain: Served, speech: str) -> None:
    report = await agents(node, "guardrail", plain, speech)
    wire = clean(plain)
    assert len(sdk_events(report, "guardrail_tripped")) == 1
    story, again = responses(wire)
    assert story["status"] == "cancelled"
    assert said(again) == [SORRY]
    first, feedback = user_texts(wire)
    assert first == "tell me a story" and "no_engines" in feedback
    cut(plain, wire)


# --- openai (OpenAIRealtimeWS), over wss ------------------------------------------------------


async def openai_ws(
    node: str, flow: str, served: Served, speech: str, tls: tuple[Any, ...]
) -> dict[str, Any]:
    assert served.url.startswith("wss://")
    report = await run_node(node, "openai_ws.mjs", flow, served.url, speech, cafile=tls[3])
    seen_by_client(report, served)
    return report


async def test_openai_text_turn(
    node: str, secure: Served, speech: str, tls: tuple[Any, ...]
) -> None:
    await openai_ws(node, "text", secure, speech, tls)
    wire = clean(secure)
    # The client named its model in the URL it built.
    assert "?model=gpt-realtime " in secure.tap.requests[0].splitlines()[0] + " "
    (done,) = responses(wire)
    assert said(done) == [GREETING] and done["output_modalities"] == ["text"]


async def test_openai_tool_turn(
    node: str, secure: Served, speech: str, tls: tuple[Any, ...]
) -> None:
    report = await openai_ws(node, "tool", secure, speech, tls)
    wire = clean(secure)
    assert sdk_events(report, "tool") == [{"kind": "tool", "name": "get_weather", "city": "Paris"}]
    answered_weather(*responses(wire))


async def test_openai_audio_turn_with_server_vad(
    node: str, secure: Served, speech: str, tls: tuple[Any, ...]
) -> None:
    await openai_ws(node, "audio", secure, speech, tls)
    wire = clean(secure)
    (transcript,) = of_type(wire, "conversation.item.input_audio_transcription.completed")
    assert transcript["transcript"] == WEATHER_QUESTION
    answered_weather(*responses(wire))


async def test_openai_truncate_and_cancel_mid_reply(
    node: str, secure: Served, speech: str, tls: tuple[Any, ...]
) -> None:
    """The application stops the story: it truncates the still-streaming item at
    what was played, then cancels the response."""
    await openai_ws(node, "cancel", secure, speech, tls)
    wire = clean(secure)
    (done,) = responses(wire)
    assert done["status"] == "cancelled"
    truncate = cut(secure, wire)
    assert truncate["audio_end_ms"] < len(STORY) * 60


async def test_openai_barge_in(
    node: str, secure: Served, speech: str, tls: tuple[Any, ...]
) -> None:
    report = await openai_ws(node, "barge-in", secure, speech, tls)
    wire = clean(secure)
    barged_in(secure, wire)
    assert sdk_events(report, "tool") == [{"kind": "tool", "name": "get_weather", "city": "Paris"}]
