// What the client flows share: a recorder of what a client saw, with bounded
// waits on it, and the report each flow prints for the Python test.

export const SERVER_VAD = {
  type: 'server_vad',
  silenceDurationMs: 400,
  createResponse: true,
  interruptResponse: true,
};

const STEP_MS = 15000;

/** The audio in 100 ms chunks (PCM16 24 kHz), each an ArrayBuffer of its own. */
export function chunks(audio, ms = 100) {
  const step = (ms * 24000 * 2) / 1000;
  const out = [];
  for (let i = 0; i < audio.length; i += step) {
    const piece = audio.subarray(i, i + step);
    out.push(piece.buffer.slice(piece.byteOffset, piece.byteOffset + piece.length));
  }
  return out;
}

/** Everything a client saw, in order, and waits for what it has not seen yet. */
export class Recorder {
  constructor(session) {
    this.session = session;
    this.events = []; // {from: 'server' | 'sdk', kind, data}
    this.waiters = [];
    this.step = 'start';
    this.history = [];
    this.audioBytes = 0;
  }

  #push(from, kind, data) {
    this.events.push({ from, kind, data });
    for (const wake of this.waiters.splice(0)) wake();
  }

  serverEvent(event) {
    if (event && typeof event.type === 'string' && event.type !== 'connection_change') {
      this.#push('server', event.type, event);
    }
  }

  sdkEvent(kind, args) {
    if (kind === 'history_updated') {
      this.history = args[0];
      return;
    }
    if (kind === 'audio') {
      this.audioBytes += args[0].data.byteLength;
    }
    this.#push('sdk', kind, describe(kind, args));
  }

  /** The data of the n-th event of this kind from this source, counted from the start. */
  async #wait(from, kind, n) {
    this.step = `${from} ${kind} #${n}`;
    const deadline = Date.now() + STEP_MS;
    for (;;) {
      const found = this.events.filter((e) => e.from === from && e.kind === kind);
      if (found.length >= n) return found[n - 1].data;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${this.step}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** How many events of this kind came from the server so far. */
  count(kind) {
    return this.events.filter((e) => e.from === 'server' && e.kind === kind).length;
  }

  server(kind, n = 1) {
    return this.#wait('server', kind, n);
  }

  sdk(kind, n = 1) {
    return this.#wait('sdk', kind, n);
  }

  report(failure) {
    return {
      failure,
      history: this.history
        .filter((item) => item.type === 'message')
        .map((item) => [
          item.role,
          item.content.map((part) => part.text ?? part.transcript ?? '').join(' '),
        ]),
      server: this.events.filter((e) => e.from === 'server').map((e) => e.kind),
      sdk: this.events.filter((e) => e.from === 'sdk' && e.kind !== 'audio').map((e) => e.data),
      audio_bytes: this.audioBytes,
    };
  }
}

function describe(kind, args) {
  switch (kind) {
    case 'agent_tool_end':
      return { kind, tool: args[2].name, output: args[3] };
    case 'agent_handoff':
      return { kind, from: args[1].name, to: args[2].name };
    case 'guardrail_tripped':
      return { kind, message: args[2].message };
    case 'error': {
      // A server error arrives as its event; a client-side one as an Error.
      const error = args[0]?.error;
      return { kind, message: String(error?.error?.message ?? error?.message ?? error) };
    }
    default:
      return { kind, ...args[0] };
  }
}

/** Runs a flow, prints the report, and ends the process (1 if the flow failed). */
export async function run(recorder, flow, close = () => recorder.session.close()) {
  let failure = null;
  try {
    await flow();
  } catch (error) {
    failure = `${recorder.step}: ${error?.message ?? error}`;
  }
  try {
    close();
  } catch {
    // already closed
  }
  process.stdout.write(`${JSON.stringify(recorder.report(failure))}\n`, () =>
    process.exit(failure ? 1 : 0),
  );
}
