// The page's audio, in the audio thread: the microphone in, the assistant out.
// The AudioContext runs at 24 kHz (the session's PCM16 rate), so the browser
// resamples the microphone and no resampling is done here.

const FRAME = 960; // 40 ms at 24 kHz: how much microphone audio one message carries
const REPORT_EVERY = 1200; // samples (50 ms) between reports of the played position

// Microphone: float samples to PCM16 frames, posted to the page.
class Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.frame = new Int16Array(FRAME);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.frame[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === FRAME) {
        this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(FRAME);
        this.filled = 0;
      }
    }
    return true;
  }
}

// Speaker: plays queued chunks in order and counts what it has played of each
// item, so a barge-in truncates the conversation at what the user heard.
class Playback extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = []; // {item, samples: Float32Array, offset}
    this.item = null;
    this.played = new Map(); // item -> samples played
    this.sinceReport = 0;
    this.port.onmessage = ({ data }) => {
      if (data.type === "audio") {
        const pcm = new Int16Array(data.pcm);
        const samples = new Float32Array(pcm.length);
        for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
        this.queue.push({ item: data.item, samples, offset: 0 });
      } else if (data.type === "clear") {
        this.queue = [];
        this.report(false);
        this.item = null;
      }
    };
  }

  report(playing) {
    if (this.item === null) return;
    this.port.postMessage({ item: this.item, samples: this.played.get(this.item) || 0, playing });
    this.sinceReport = 0;
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    let i = 0;
    while (i < out.length && this.queue.length) {
      const chunk = this.queue[0];
      if (chunk.item !== this.item) {
        this.report(false);
        this.item = chunk.item;
      }
      const n = Math.min(out.length - i, chunk.samples.length - chunk.offset);
      out.set(chunk.samples.subarray(chunk.offset, chunk.offset + n), i);
      chunk.offset += n;
      i += n;
      this.played.set(chunk.item, (this.played.get(chunk.item) || 0) + n);
      if (chunk.offset === chunk.samples.length) this.queue.shift();
    }
    out.fill(0, i);
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    if (i > 0) {
      this.sinceReport += i;
      if (!this.queue.length) {
        this.report(false); // ran dry: the position is final until more arrives
      } else if (this.sinceReport >= REPORT_EVERY) {
        this.report(true);
      }
    }
    return true;
  }
}

registerProcessor("cantata-capture", Capture);
registerProcessor("cantata-playback", Playback);
