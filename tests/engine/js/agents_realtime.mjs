// One flow of @openai/agents-realtime (RealtimeSession over its WebSocket
// transport) against the local engine, run by tests/engine/test_js_clients.py.
//
//   node agents_realtime.mjs FLOW URL [SPEECH.pcm]
//
// FLOW is text, tool, handoff, audio, interrupt, barge-in or guardrail; URL the
// engine's (or its recording proxy's) realtime endpoint, with no model in it,
// as an application pointing the SDK at its own server writes it; SPEECH raw
// PCM16 24 kHz of the user talking. Prints one JSON report of what the SDK
// showed its user, and exits 0, or 1 after a step timed out (the report says
// which).
import { readFileSync } from 'node:fs';
import { RealtimeAgent, RealtimeSession, tool } from '@openai/agents-realtime';
import { z } from 'zod';
import { Recorder, SERVER_VAD, chunks, run } from './common.mjs';

const [flow, url, speechFile] = process.argv.slice(2);

const getWeather = tool({
  name: 'get_weather',
  description: 'Current weather for a city.',
  parameters: z.object({ city: z.string().describe('The city.') }),
  execute: async ({ city }) => (city ? 'sunny' : 'unknown'),
});

const refundOrder = tool({
  name: 'refund_order',
  description: 'Refunds an order.',
  parameters: z.object({ order: z.number().int().describe('The order number.') }),
  execute: async ({ order }) => `refunded order ${order}`,
});

// Named in lower case: the SDK names the handoff tool after the agent as written
// (transfer_to_billing), where the Python SDK lower-cases it.
const billing = new RealtimeAgent({
  name: 'billing',
  instructions: 'You refund orders.',
  tools: [refundOrder],
});
const triage = new RealtimeAgent({
  name: 'Triage',
  instructions: 'You help people with the weather.',
  tools: [getWeather],
  handoffs: [billing],
});

const noEngines = {
  name: 'no_engines',
  execute: async ({ agentOutput }) => ({
    tripwireTriggered: agentOutput.includes('engine'),
    outputInfo: {},
  }),
};

const TEXT = { outputModalities: ['text'] };
const VAD = { audio: { input: { turnDetection: SERVER_VAD } } };

const flows = {
  async text(r) {
    r.session.sendMessage('hello there');
    await r.server('response.done');
  },
  async tool(r) {
    r.session.sendMessage("What's the weather in Paris?");
    await r.sdk('agent_tool_end');
    await r.server('response.done', 2);
  },
  async handoff(r) {
    r.session.sendMessage('I want a refund');
    await r.sdk('agent_handoff');
    await r.server('response.done', 2);
    r.session.sendMessage('It is order 4711');
    await r.sdk('agent_tool_end');
    await r.server('response.done', 4);
  },
  async audio(r) {
    r.speak(readFileSync(speechFile));
    await r.sdk('agent_tool_end');
    await r.server('response.done', 2);
  },
  async interrupt(r) {
    r.session.sendMessage('tell me a story');
    const first = await r.server('response.output_audio.delta');
    await r.server('response.output_audio.delta', 4);
    r.session.interrupt();
    await r.server('response.done');
    await r.retrieve(first.item_id);
  },
  async 'barge-in'(r) {
    r.session.sendMessage('tell me a story');
    const first = await r.server('response.output_audio.delta');
    await r.server('response.output_audio.delta', 4);
    r.speak(readFileSync(speechFile));
    await r.sdk('agent_tool_end');
    await r.server('response.done', 3);
    await r.retrieve(first.item_id);
  },
  async guardrail(r) {
    r.session.sendMessage('tell me a story');
    const first = await r.server('response.output_audio.delta');
    await r.sdk('guardrail_tripped');
    await r.server('response.done', 2);
    await r.retrieve(first.item_id);
  },
};

const settings = {
  text: TEXT,
  tool: TEXT,
  handoff: TEXT,
  audio: VAD,
  interrupt: VAD,
  'barge-in': VAD,
  guardrail: VAD,
};

const guarded = new RealtimeAgent({
  name: 'Guarded',
  instructions: 'You help people with the weather.',
});

const session = new RealtimeSession(flow === 'guardrail' ? guarded : triage, {
  transport: 'websocket',
  config: settings[flow],
  ...(flow === 'guardrail'
    ? { outputGuardrails: [noEngines], outputGuardrailSettings: { debounceTextLength: 20 } }
    : {}),
});

const recorder = new Recorder(session);
for (const kind of [
  'agent_tool_end',
  'agent_handoff',
  'audio',
  'audio_interrupted',
  'guardrail_tripped',
  'error',
  'history_updated',
]) {
  session.on(kind, (...args) => recorder.sdkEvent(kind, args));
}
session.on('transport_event', (event) => recorder.serverEvent(event));
recorder.speak = (audio) => {
  for (const piece of chunks(audio)) session.sendAudio(piece);
};
recorder.retrieve = async (itemId) => {
  const before = recorder.count('conversation.item.retrieved');
  session.transport.sendEvent({ type: 'conversation.item.retrieve', item_id: itemId });
  await recorder.server('conversation.item.retrieved', before + 1);
};

await run(recorder, async () => {
  await session.connect({ apiKey: 'sk-local', url });
  await recorder.server('session.updated');
  await flows[flow](recorder);
});
