// The playground page: one WebSocket to the Cantata process, which runs the
// agent session. Text frames are JSON (events in, control messages out);
// binary frames are audio, PCM16 at 24 kHz (assistant audio arrives with its
// item id in front: one length byte, the id, then the samples).

import { startDirect } from "/static/direct.js";

const $ = (id) => document.getElementById(id);
const RATE = 24000;
const LOG_LIMIT = 2000; // event log entries kept on the page
const KEPT_LIMIT = 50000; // messages kept for the download (the oldest go first)

const page = {
  ws: null,
  audio: null, // {context, playback, capture, stream}
  entries: new Map(), // item or call id -> transcript element
  events: [], // everything received, for the download
  turns: [],
  session: null,
  micOn: false,
  direct: null, // the page's own Realtime client in direct mode (/?direct)
};

// --- the connection ---------------------------------------------------------------

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  page.ws = ws;
  ws.onmessage = ({ data }) => (typeof data === "string" ? onMessage(JSON.parse(data)) : onAudio(data));
  ws.onclose = () => {
    setState("ended");
    setTalking(false);
  };
}

function send(message) {
  if (page.ws && page.ws.readyState === WebSocket.OPEN) page.ws.send(JSON.stringify(message));
}

const MESSAGES = {
  hello(m) {
    $("agent").textContent = m.agent;
    $("backend").textContent = `on ${m.backend} · tools: ${m.tools.join(", ") || "none"}`;
    page.session = m.session_id;
    setState("listening");
    setTalking(true);
  },
  event(m) {
    record(m.kind, m.data);
    const show = EVENTS[m.kind];
    if (show) show(m.data);
  },
  metrics(m) {
    const s = m.session;
    const cost = s.cost_usd == null ? "" : ` · $${s.cost_usd.toFixed(4)}`;
    $("totals").textContent =
      `${s.turns} turns · ${s.usage.input_tokens} tokens in, ${s.usage.output_tokens} out` +
      `${cost} · ${s.interruptions} interruptions · ${s.reconnects} reconnects`;
  },
  clear() {
    if (page.audio) page.audio.playback.port.postMessage({ type: "clear" });
  },
  error(m) {
    record("error", m);
    note(`the playground refused a message: ${m.message}`, "error");
  },
  recorded(m) {
    const el = entry("note");
    el.textContent = "recording: ";
    for (const file of m.files) {
      const a = document.createElement("a");
      a.href = file.url;
      a.download = file.name;
      a.textContent = file.name;
      el.append(a, " ");
    }
  },
  ended(m) {
    note(`session ended: ${m.reason}`, "error");
    setState("ended");
    setTalking(false);
  },
};

function onMessage(m) {
  page.events.push({ at: performance.now(), ...m });
  if (page.events.length > KEPT_LIMIT) page.events.splice(0, page.events.length - KEPT_LIMIT);
  const handle = MESSAGES[m.type];
  if (handle) handle(m);
}

function onAudio(buffer) {
  const bytes = new Uint8Array(buffer);
  const idLength = bytes[0];
  const item = new TextDecoder().decode(bytes.subarray(1, 1 + idLength));
  const pcm = buffer.slice(1 + idLength);
  if (!page.audio) return; // no audio context yet: the page shows the text only
  page.audio.playback.port.postMessage({ type: "audio", item, pcm }, [pcm]);
}

// --- what each session event shows --------------------------------------------------

const EVENTS = {
  SessionStarted: (d) => note(`session ${d.session_id} on model ${d.model}`),
  UserSpeechStarted: () => setState("you're speaking"),
  UserSpeechStopped: () => setState("thinking"),
  UserTranscript(d) {
    line(d.item_id, "user", "you", d.text + (d.final ? "" : " …"));
  },
  AssistantDelta(d) {
    setState("speaking");
    const el = line(d.item_id, "assistant", "assistant", null);
    el.querySelector(".text").textContent += d.delta;
  },
  AssistantMessage(d) {
    const extra = d.audio_ms ? ` (${(d.audio_ms / 1000).toFixed(1)} s of audio)` : "";
    line(d.item_id, "assistant", "assistant", d.text + extra);
  },
  ResponseFinished: () => setState("listening"),
  ToolCallStarted(d) {
    tool(d.call_id, `${d.name}(${d.arguments})`, "running");
  },
  ToolProgress(d) {
    const total = d.total == null ? "" : ` of ${d.total}`;
    tool(d.call_id, null, `running: ${d.progress}${total} ${d.message || ""}`);
  },
  ToolCallFinished(d) {
    tool(d.call_id, `${d.name}(${d.arguments})`, `${d.status} → ${d.output}`);
  },
  McpCallFinished(d) {
    const result = d.error == null ? d.output : `error: ${d.error}`;
    tool(d.item_id, `${d.server_label}.${d.name}(${d.arguments})`, `→ ${result}`);
  },
  ApprovalRequested: (d) => approval(d.request),
  ElicitationRequested: (d) => question(d.request),
  Interrupted(d) {
    note(`barge-in: the assistant stopped after ${d.played_ms} ms${d.truncated ? " (truncated there)" : ""}`);
  },
  HandedOff: (d) => note(`handoff: ${d.from_agent} → ${d.to_agent}`),
  ErrorReported: (d) => note(`error: ${d.error.message}`, "error"),
  Reconnecting(d) {
    setState("reconnecting");
    note(`connection lost (${d.reason}); reconnecting, attempt ${d.attempt}`);
  },
  Reconnected(d) {
    setState("listening");
    note(`reconnected after ${Math.round(d.outage_ms)} ms, ${d.replayed} items replayed`);
  },
  RolledOver: (d) => note(`rolled over to a new connection (${d.replayed} items replayed)`),
  TurnMeasured: (d) => turn(d.metrics),
};

function setState(state) {
  const el = $("state");
  el.textContent = state;
  el.dataset.state = state.split(" ")[0].replace("you're", "listening");
}

function setTalking(on) {
  $("text").disabled = !on;
  $("send").disabled = !on;
}

function entry(cls) {
  const li = document.createElement("li");
  li.className = cls;
  $("transcript").append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

function line(key, cls, who, text) {
  let el = key ? page.entries.get(key) : null;
  if (!el) {
    el = entry(cls);
    el.innerHTML = '<span class="who"></span><span class="text"></span>';
    el.querySelector(".who").textContent = who;
    if (key) page.entries.set(key, el);
  }
  if (text !== null) el.querySelector(".text").textContent = text;
  return el;
}

function note(text, cls = "note") {
  entry(cls).textContent = text;
}

function tool(callId, call, status) {
  let el = page.entries.get(callId);
  if (!el) {
    el = entry("tool");
    el.dataset.call = callId;
    el.innerHTML = '<span class="who">tool</span><span class="call"></span> <span class="status"></span>';
    page.entries.set(callId, el);
  }
  if (call !== null) el.querySelector(".call").textContent = call;
  el.querySelector(".status").textContent = status;
}

function approval(request) {
  const el = entry("approval");
  el.dataset.call = request.call_id;
  el.innerHTML =
    '<div><span class="who">approve?</span><span class="call"></span></div>' +
    '<div class="actions"><button type="button" class="yes">Approve</button>' +
    '<button type="button" class="always">Always allow this tool</button>' +
    '<button type="button" class="no">Reject</button><span class="left"></span></div>';
  el.querySelector(".call").textContent = `${request.tool}(${request.arguments})`;
  const left = el.querySelector(".left");
  const ends = request.expires_in_s == null ? null : performance.now() + request.expires_in_s * 1000;
  const tick = () => {
    if (ends === null) return;
    const s = Math.max(0, Math.ceil((ends - performance.now()) / 1000));
    left.textContent = s ? `${s} s left` : "timed out: rejected";
    if (!s) settle("timed out");
  };
  const timer = setInterval(tick, 250);
  tick();
  const settle = (text) => {
    clearInterval(timer);
    el.querySelectorAll("button").forEach((b) => (b.disabled = true));
    left.textContent = text;
  };
  el.querySelector(".yes").onclick = () => {
    send({ type: "approve", call_id: request.call_id });
    settle("approved");
  };
  el.querySelector(".always").onclick = () => {
    send({ type: "approve", call_id: request.call_id, always: true });
    settle(`approved, and ${request.tool} from now on`);
  };
  el.querySelector(".no").onclick = () => {
    send({ type: "reject", call_id: request.call_id, reason: "the user declined" });
    settle("rejected");
  };
  el.querySelector(".yes").focus();
}

// A tool's question for the user (an MCP server's elicitation): a form built
// from its flat schema, or a page to visit (URL mode).
function question(request) {
  const el = entry("approval");
  el.dataset.question = request.id;
  const head = document.createElement("div");
  head.innerHTML = '<span class="who"></span><span class="call"></span>';
  head.querySelector(".who").textContent = `${request.source} asks:`;
  head.querySelector(".call").textContent = request.message;
  const form = document.createElement("form");
  const fields = Object.entries((request.schema && request.schema.properties) || {});
  for (const [name, spec] of fields) {
    const label = document.createElement("label");
    label.textContent = `${spec.title || name} `;
    const input = document.createElement("input");
    input.name = name;
    input.type = spec.type === "boolean" ? "checkbox" : spec.type === "number" || spec.type === "integer" ? "number" : "text";
    label.append(input);
    form.append(label, " ");
  }
  if (request.mode === "url" && request.url) {
    const a = document.createElement("a");
    a.href = request.url;
    a.target = "_blank";
    a.rel = "noopener";
    a.textContent = request.url;
    form.append(a, " ");
  }
  const actions = document.createElement("div");
  actions.className = "actions";
  actions.innerHTML =
    '<button type="submit" class="yes">Answer</button><button type="button" class="no">Decline</button>' +
    '<button type="button" class="cancel">Cancel</button><span class="left"></span>';
  form.append(actions);
  el.append(head, form);
  const settle = (text) => {
    form.querySelectorAll("button, input").forEach((b) => (b.disabled = true));
    actions.querySelector(".left").textContent = text;
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const content = {};
    for (const [name, spec] of fields) {
      const input = form.elements[name];
      content[name] = spec.type === "boolean" ? input.checked : spec.type === "number" || spec.type === "integer" ? Number(input.value) : input.value;
    }
    send({ type: "elicitation", id: request.id, action: "accept", content });
    settle("answered");
  });
  actions.querySelector(".no").onclick = () => {
    send({ type: "elicitation", id: request.id, action: "decline" });
    settle("declined");
  };
  actions.querySelector(".cancel").onclick = () => {
    send({ type: "elicitation", id: request.id, action: "cancel" });
    settle("cancelled");
  };
  const first = form.querySelector("input");
  (first || actions.querySelector(".yes")).focus();
}

function turn(t) {
  page.turns.push(t);
  const ms = (v) => (v == null ? "–" : `${Math.round(v)} ms`);
  const tools = t.tools.map((x) => `${x.name} ${ms(x.latency_ms)}` + (x.approval_wait_ms == null ? "" : ` (+${ms(x.approval_wait_ms)} approval)`));
  const row = document.createElement("tr");
  const took = t.ended_at - t.started_at;
  for (const value of [
    t.index, t.trigger, ms(t.first_audio_ms), ms(t.first_text_ms), ms(took * 1000),
    tools.join(", ") || "–", `${t.audio_played_ms} / ${t.audio_generated_ms} ms`,
    `${t.usage.input_tokens} / ${t.usage.output_tokens}`,
    t.cost_usd == null ? "–" : `$${t.cost_usd.toFixed(4)}`,
  ]) {
    const td = document.createElement("td");
    td.textContent = value;
    row.append(td);
  }
  $("turns").tBodies[0].append(row);
}

// --- the event log ------------------------------------------------------------------

function record(kind, data) {
  const li = document.createElement("li");
  const type = kind === "ServerEvent" ? data.type : kind;
  li.className = kind === "ServerEvent" ? "server" : "app";
  li.dataset.type = type;
  li.innerHTML = '<span class="kind"></span><span class="body"></span>';
  li.querySelector(".kind").textContent = type;
  li.querySelector(".body").textContent = JSON.stringify(data);
  const log = $("log");
  log.append(li);
  while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  filterOne(li);
}

function filterOne(li) {
  const words = $("filter").value.trim().toLowerCase();
  const rawShown = $("raw").checked || !li.classList.contains("server");
  li.hidden = !rawShown || (words !== "" && !li.textContent.toLowerCase().includes(words));
}

function filterAll() {
  for (const li of $("log").children) filterOne(li);
}

// --- audio --------------------------------------------------------------------------

async function ensureAudio() {
  if (page.audio) return page.audio;
  const context = new AudioContext({ sampleRate: RATE });
  await context.audioWorklet.addModule("/static/worklet.js");
  const playback = new AudioWorkletNode(context, "cantata-playback", { outputChannelCount: [1] });
  playback.connect(context.destination);
  playback.port.onmessage = ({ data }) => {
    const ms = (data.samples * 1000) / RATE;
    if (page.direct) page.direct.played(data.item, ms, data.playing);
    else send({ type: "played", item: data.item, ms, playing: data.playing });
  };
  page.audio = { context, playback, capture: null, stream: null };
  await context.resume();
  return page.audio;
}

async function startMic() {
  const audio = await ensureAudio();
  audio.stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  const source = audio.context.createMediaStreamSource(audio.stream);
  audio.capture = new AudioWorkletNode(audio.context, "cantata-capture");
  audio.capture.port.onmessage = ({ data }) => {
    const talking = $("mode").value === "hands-free" || $("ptt").classList.contains("held");
    if (!talking) return;
    if (page.direct) page.direct.audio(data);
    else if (page.ws && page.ws.readyState === WebSocket.OPEN) page.ws.send(data);
  };
  source.connect(audio.capture);
  page.micOn = true;
}

function stopMic() {
  const audio = page.audio;
  if (audio && audio.stream) {
    audio.stream.getTracks().forEach((t) => t.stop());
    audio.capture.disconnect();
    audio.stream = audio.capture = null;
  }
  page.micOn = false;
}

// --- controls -----------------------------------------------------------------------

function download() {
  const report = { session_id: page.session, turns: page.turns, events: page.events };
  const blob = new Blob([JSON.stringify(report, null, 2)], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${page.session || "session"}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function wire() {
  $("say").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    ensureAudio().catch(() => {}); // a click is the gesture that lets the page play sound
    line(null, "user", "you", text);
    if (page.direct) page.direct.text(text);
    else send({ type: "text", text });
    $("text").value = "";
  });
  $("mic").addEventListener("click", async () => {
    const button = $("mic");
    try {
      if (page.micOn) stopMic();
      else await startMic();
    } catch (error) {
      note(`the microphone is not available: ${error.message}`, "error");
    }
    button.setAttribute("aria-pressed", String(page.micOn));
    button.textContent = page.micOn ? "Stop microphone" : "Start microphone";
  });
  $("mode").addEventListener("change", () => {
    const ptt = $("mode").value === "push-to-talk";
    $("ptt").hidden = !ptt;
    send({ type: "mode", mode: $("mode").value });
  });
  const ptt = $("ptt");
  const press = () => {
    if (ptt.classList.contains("held")) return;
    ptt.classList.add("held");
    send({ type: "interrupt" });
  };
  const release = () => {
    if (!ptt.classList.contains("held")) return;
    ptt.classList.remove("held");
    send({ type: "commit" });
  };
  ptt.addEventListener("pointerdown", press);
  ptt.addEventListener("pointerup", release);
  ptt.addEventListener("pointerleave", release);
  ptt.addEventListener("keydown", (e) => (e.key === " " || e.key === "Enter") && (e.preventDefault(), press()));
  ptt.addEventListener("keyup", (e) => (e.key === " " || e.key === "Enter") && release());
  $("stop").addEventListener("click", () => send({ type: "interrupt" }));
  $("download").addEventListener("click", download);
  $("end").addEventListener("click", () => send({ type: "end" }));
  $("filter").addEventListener("input", filterAll);
  $("raw").addEventListener("change", filterAll);
}

// What direct mode draws with: the same transcript, log and speaker.
const ui = {
  line, note, tool, setState, setTalking, record,
  header(agent, backend) {
    $("agent").textContent = agent;
    $("backend").textContent = backend;
  },
  play(item, pcm) {
    if (page.audio) page.audio.playback.port.postMessage({ type: "audio", item, pcm }, [pcm]);
  },
  clearPlayback: () => MESSAGES.clear(),
};

wire();
if (new URLSearchParams(location.search).has("direct")) {
  $("switch").href = "/";
  $("switch").textContent = "back to the session run by Cantata (tools, approvals, metrics)";
  startDirect(ui).then((client) => (page.direct = client));
} else {
  connect();
}
// For tests and the curious: the page's state, read-only by convention.
window.cantataPlayground = page;
