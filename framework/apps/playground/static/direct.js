// Direct mode (/?direct): the page is itself a Realtime client. The Cantata
// process only mints an ephemeral key (POST /api/client-secret, configured
// with the agent's instructions); the browser then opens the Realtime
// WebSocket with that key as a subprotocol, as browser clients of the hosted
// API do. The agent's tools run in Python, so they are not offered here.

const b64 = {
  encode(buffer) {
    let text = "";
    const bytes = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i += 0x8000) {
      text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    }
    return btoa(text);
  },
  decode(text) {
    const raw = atob(text);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  },
};

// What each server event shows, by its type.
function views(ui, client) {
  return {
    "session.created": (e) => {
      ui.note(`direct session ${e.session.id} on model ${e.session.model}`);
      ui.setState("listening");
      ui.setTalking(true);
    },
    "input_audio_buffer.speech_started": () => {
      ui.setState("you're speaking");
      client.bargeIn();
    },
    "input_audio_buffer.speech_stopped": () => ui.setState("thinking"),
    "conversation.item.input_audio_transcription.delta": (e) =>
      ui.line(e.item_id, "user", "you", null).querySelector(".text").append(e.delta),
    "conversation.item.input_audio_transcription.completed": (e) =>
      ui.line(e.item_id, "user", "you", e.transcript),
    "response.output_text.delta": (e) => client.say(e.item_id, e.delta),
    "response.output_audio_transcript.delta": (e) => client.say(e.item_id, e.delta),
    "response.output_audio.delta": (e) => client.play(e.item_id, b64.decode(e.delta)),
    "response.function_call_arguments.done": (e) =>
      ui.tool(e.call_id, `${e.name}(${e.arguments})`, "not run: tools run in the Cantata process"),
    "response.done": () => ui.setState("listening"),
    error: (e) => ui.note(`error: ${e.error.message}`, "error"),
  };
}

export async function startDirect(ui) {
  ui.setState("connecting");
  const answer = await fetch("/api/client-secret", { method: "POST" });
  const secret = await answer.json();
  if (!answer.ok) {
    ui.note(`no ephemeral key: ${secret.error.message}`, "error");
    ui.setState("ended");
    return null;
  }
  ui.header(secret.agent, `directly on ${secret.url} · ephemeral key, no tools`);
  const ws = new WebSocket(secret.url, ["realtime", `openai-insecure-api-key.${secret.value}`]);
  const client = {
    ws,
    playing: null, // {item, ms}: what the speaker last said it played
    send(event) {
      if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(event));
    },
    text(text) {
      client.send({
        type: "conversation.item.create",
        item: { type: "message", role: "user", content: [{ type: "input_text", text }] },
      });
      client.send({ type: "response.create" });
    },
    audio(frame) {
      client.send({ type: "input_audio_buffer.append", audio: b64.encode(frame) });
    },
    played(item, ms, playing) {
      client.playing = playing ? { item, ms } : null;
    },
    say(item, delta) {
      ui.setState("speaking");
      ui.line(item, "assistant", "assistant", null).querySelector(".text").append(delta);
    },
    play(item, pcm) {
      ui.play(item, pcm);
    },
    bargeIn() {
      // Stop the speaker and cut the item where the user stopped hearing it.
      const heard = client.playing;
      ui.clearPlayback();
      if (heard) {
        client.send({
          type: "conversation.item.truncate",
          item_id: heard.item,
          content_index: 0,
          audio_end_ms: Math.floor(heard.ms),
        });
        ui.note(`barge-in: the assistant stopped after ${Math.floor(heard.ms)} ms (truncated there)`);
      }
    },
  };
  const shown = views(ui, client);
  ws.onmessage = ({ data }) => {
    const event = JSON.parse(data);
    const logged = event.type === "response.output_audio.delta" ? { ...event, delta: `<${event.delta.length} base64 chars>` } : event;
    ui.record("ServerEvent", logged);
    const show = shown[event.type];
    if (show) show(event);
  };
  ws.onclose = () => {
    ui.setState("ended");
    ui.setTalking(false);
  };
  return client;
}
