// One flow of the openai package's realtime client (OpenAIRealtimeWS, on the
// ws package) against the local engine, run by tests/engine/test_js_clients.py.
//
//   node openai_ws.mjs FLOW URL [SPEECH.pcm]
//
// FLOW is text, tool, audio, cancel or barge-in; URL the engine's (or its
// recording proxy's) wss:// realtime endpoint: this client dials only wss://,
// so the process must trust the engine's certificate (NODE_EXTRA_CA_CERTS).
// This client is the raw protocol: the script plays the application's part,
// running the tool and tracking playback (in real time from the first audio
// delta) to truncate what was not heard. Prints one JSON report and exits 0, or
// 1 after a step timed out.
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { Recorder, chunks, run } from './common.mjs';

const [flow, url, speechFile] = process.argv.slice(2);
const MODEL = 'gpt-realtime';
const BYTES_PER_MS = 48;

const weatherTool = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city.',
  parameters: {
    type: 'object',
    properties: { city: { type: 'string', description: 'The city.' } },
    required: ['city'],
  },
};

const client = new OpenAI({
  apiKey: 'sk-local',
  baseURL: url.replace(/^wss:/, 'https:').replace(/\/realtime.*$/, ''),
});
const rt = new OpenAIRealtimeWS({ model: MODEL }, client);
const recorder = new Recorder(rt);
const playback = { itemId: null, started: 0, receivedMs: 0, stopped: false };

rt.on('event', (event) => {
  recorder.serverEvent(event);
  if (event.type === 'response.output_audio.delta' && !playback.stopped) {
    if (playback.itemId !== event.item_id) {
      Object.assign(playback, { itemId: event.item_id, started: Date.now(), receivedMs: 0 });
    }
    playback.receivedMs += Buffer.from(event.delta, 'base64').length / BYTES_PER_MS;
  }
});
rt.on('error', (error) => recorder.sdkEvent('error', [{ error }]));

function send(event) {
  rt.send(event);
}

function say(text) {
  send({
    type: 'conversation.item.create',
    item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] },
  });
}

function speak(audio) {
  for (const piece of chunks(audio)) {
    send({ type: 'input_audio_buffer.append', audio: Buffer.from(piece).toString('base64') });
  }
}

/** Stops playback where it is and truncates the item there, as a player would. */
function stopPlayback() {
  const played = Math.min(Date.now() - playback.started, playback.receivedMs);
  playback.stopped = true;
  send({
    type: 'conversation.item.truncate',
    item_id: playback.itemId,
    content_index: 0,
    audio_end_ms: Math.floor(played),
  });
  return playback.itemId;
}

/** Runs the calls of a finished response and asks for the next one. */
function answerCalls(done) {
  for (const item of done.response.output) {
    if (item.type === 'function_call') {
      const { city } = JSON.parse(item.arguments);
      recorder.sdkEvent('tool', [{ name: item.name, city }]);
      send({
        type: 'conversation.item.create',
        item: { type: 'function_call_output', call_id: item.call_id, output: 'sunny' },
      });
    }
  }
  send({ type: 'response.create' });
}

async function retrieve(itemId) {
  const before = recorder.count('conversation.item.retrieved');
  send({ type: 'conversation.item.retrieve', item_id: itemId });
  await recorder.server('conversation.item.retrieved', before + 1);
}

async function configure(session) {
  send({ type: 'session.update', session: { type: 'realtime', ...session } });
  await recorder.server('session.updated');
}

const TEXT = { output_modalities: ['text'], tools: [weatherTool] };
const VAD = {
  tools: [weatherTool],
  audio: {
    input: {
      transcription: { model: 'gpt-4o-mini-transcribe' },
      turn_detection: {
        type: 'server_vad',
        silence_duration_ms: 400,
        create_response: true,
        interrupt_response: true,
      },
    },
  },
};

const flows = {
  async text() {
    await configure(TEXT);
    say('hello there');
    send({ type: 'response.create' });
    await recorder.server('response.done');
  },
  async tool() {
    await configure(TEXT);
    say("What's the weather in Paris?");
    send({ type: 'response.create' });
    answerCalls(await recorder.server('response.done'));
    await recorder.server('response.done', 2);
  },
  async audio() {
    await configure(VAD);
    speak(readFileSync(speechFile));
    answerCalls(await recorder.server('response.done'));
    await recorder.server('response.done', 2);
  },
  async cancel() {
    // The application stops the reply mid-sentence: truncate what was not
    // heard, then cancel what is still being generated.
    await configure(VAD);
    say('tell me a story');
    send({ type: 'response.create' });
    await recorder.server('response.output_audio.delta', 4);
    const itemId = stopPlayback();
    send({ type: 'response.cancel' });
    await recorder.server('response.done');
    await retrieve(itemId);
  },
  async 'barge-in'() {
    await configure(VAD);
    say('tell me a story');
    send({ type: 'response.create' });
    await recorder.server('response.output_audio.delta', 4);
    speak(readFileSync(speechFile));
    await recorder.server('input_audio_buffer.speech_started');
    const itemId = stopPlayback();
    await recorder.server('response.done'); // the story, cancelled by the turn
    playback.stopped = false;
    answerCalls(await recorder.server('response.done', 2));
    await recorder.server('response.done', 3);
    await retrieve(itemId);
  },
};

await run(
  recorder,
  async () => {
    await new Promise((resolve, reject) => {
      rt.socket.once('open', resolve);
      rt.socket.once('error', reject);
    });
    await recorder.server('session.created');
    await flows[flow]();
  },
  () => rt.close(),
);
