// The signed-in party's event stream (GET /v1/hotline/stream, server-sent events), read with
// fetch() because EventSource cannot send the Authorization header. Each event goes to
// `onEvent` once, in order: on reconnection the stream is asked for what followed the last
// event received (`Last-Event-ID`). While the stream cannot be opened (a proxy that buffers,
// a server without it) the same events are polled from GET /v1/hotline/events?after=, and
// the stream is tried again every RETRY_STREAM_MS.

const POLL_MS = 2000;
const RETRY_STREAM_MS = 15000;
const MAX_BACKOFF_MS = 10000;
/** After this many failed connections in a row, poll until the stream comes back. */
const FAILURES_BEFORE_POLLING = 2;

/** Parse one SSE block ("field: value" lines) into {id, event, data, retry} (or null). */
export function parseBlock(block) {
  const out = {id: null, event: 'message', data: [], retry: null};
  let any = false;
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'id') { out.id = value; any = true; }
    else if (name === 'event') { out.event = value; any = true; }
    else if (name === 'data') { out.data.push(value); any = true; }
    else if (name === 'retry' && /^\d+$/.test(value)) out.retry = Number(value);
  }
  return any || out.retry !== null ? {...out, data: out.data.join('\n')} : null;
}

export class EventStream {
  /**
   * @param {import('./api.js').Api} api
   * @param {(event: {seq, at, type, data}) => void} onEvent
   * @param {(mode: 'connecting'|'live'|'polling'|'stopped') => void} onMode
   */
  constructor(api, onEvent, onMode = () => {}) {
    this.api = api;
    this.onEvent = onEvent;
    this.onMode = onMode;
    this.last = 0; // the number of the last event handed over
    this.mode = 'stopped';
    this.failures = 0;
    this.connections = 0;
    this.retryMs = 1000;
    this.abort = null;
    this.stopped = true;
    this.pollTimer = null;
  }

  /** Start after event number `after` (the events before it are already known). */
  start(after = 0) {
    this.last = after;
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.abort?.abort();
    this.setMode('stopped');
  }

  setMode(mode) {
    if (mode !== this.mode) { this.mode = mode; this.onMode(mode); }
  }

  deliver(e) {
    if (typeof e.seq !== 'number' || e.seq <= this.last) return; // already handed over
    this.last = e.seq;
    try { this.onEvent(e); } catch (err) { console.error('event handler failed', err); }
  }

  async connect() {
    if (this.stopped) return;
    if (this.mode !== 'polling') this.setMode('connecting');
    const abort = new AbortController();
    this.abort = abort;
    const headers = {Authorization: `Bearer ${this.api.token}`, Accept: 'text/event-stream'};
    if (this.last > 0) headers['Last-Event-ID'] = String(this.last);
    let opened = false;
    try {
      const res = await fetch(`${this.api.base}/v1/hotline/stream`, {headers, signal: abort.signal, cache: 'no-store'});
      if (res.status === 401) { this.stop(); window.dispatchEvent(new CustomEvent('deconflict:unauthorized')); return; }
      if (!res.ok || !res.body) throw new Error(`stream: HTTP ${res.status}`);
      opened = true;
      this.connections += 1;
      this.failures = 0;
      clearTimeout(this.pollTimer);
      this.setMode('live');
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r\n\r\n|\n\n|\r\r/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + (buffer.startsWith('\r\n\r\n', cut) ? 4 : 2));
          const b = parseBlock(block);
          if (!b) continue;
          if (b.retry !== null) this.retryMs = Math.min(Math.max(b.retry, 250), MAX_BACKOFF_MS);
          if (!b.data) continue;
          try { this.deliver(JSON.parse(b.data)); } catch (err) { console.warn('bad stream event', err); }
        }
      }
    } catch (err) {
      if (this.stopped) return;
    }
    if (this.stopped) return;
    // the stream ended or could not open: reconnect (Last-Event-ID), polling meanwhile
    if (!opened) this.failures += 1;
    if (this.failures >= FAILURES_BEFORE_POLLING) {
      this.startPolling();
      setTimeout(() => this.connect(), RETRY_STREAM_MS);
    } else {
      setTimeout(() => this.connect(), Math.min(this.retryMs * 2 ** this.failures, MAX_BACKOFF_MS));
    }
  }

  startPolling() {
    if (this.mode === 'polling' || this.stopped) return;
    this.setMode('polling');
    const poll = async () => {
      if (this.mode !== 'polling' || this.stopped) return;
      try {
        for (;;) {
          const page = await this.api.get(`/v1/hotline/events?after=${this.last}&limit=500`);
          for (const e of page.events) this.deliver(e);
          if (page.events.length < 500) break;
        }
      } catch (err) {
        if (err?.status === 401) { this.stop(); window.dispatchEvent(new CustomEvent('deconflict:unauthorized')); return; }
      }
      if (this.mode === 'polling') this.pollTimer = setTimeout(poll, POLL_MS);
    };
    poll();
  }

  /** Drop the connection now (tests: the client must come back after the last event it had). */
  reconnect() {
    this.abort?.abort();
  }
}
