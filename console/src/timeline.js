// The timeline: look at the map as the shared record had it at any past moment (the
// server rebuilds it from the log alone: GET /v1/log/replay?at=), or live. A slider from the
// log's first entry to now, a time field (RFC 3339 UTC), a "Live" button, and an indicator
// that always says which of the two the map shows. Times are the service's (clock.js).
import {serviceClock} from './clock.js';

const SETTLE_MS = 250;

function b64json(text) {
  const bin = atob(text);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** "2026-11-26T08:12:03Z" (seconds: what the field shows and accepts back). */
export function isoSeconds(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

export class Timeline {
  /**
   * @param {HTMLElement} root  the #timeline section
   * @param {import('./api.js').Api} api
   * @param {(at: number|null) => void} onChange  null: live
   */
  constructor(root, api, onChange) {
    this.api = api;
    this.onChange = onChange;
    this.modeEl = root.querySelector('#timeline-mode');
    this.range = root.querySelector('#timeline-range');
    this.field = root.querySelector('#timeline-at');
    this.liveButton = root.querySelector('#timeline-live');
    this.errorEl = root.querySelector('#timeline-error');
    this.at = null;
    this.first = serviceClock.now() - 3600_000;
    this.settle = null;
    this.range.addEventListener('input', () => {
      clearTimeout(this.settle);
      const s = Number(this.range.value);
      this.field.value = isoSeconds(s * 1000);
      this.settle = setTimeout(() => {
        this.settle = null;
        this.set(s >= Number(this.range.max) ? null : s * 1000);
      }, SETTLE_MS);
    });
    root.querySelector('#timeline-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.field.value.trim();
      const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`);
      if (!Number.isFinite(ms)) {
        this.errorEl.textContent = 'not a time: write it as 2026-11-26T08:00:00Z';
        return;
      }
      this.set(ms);
    });
    this.liveButton.addEventListener('click', () => this.set(null));
    this.extend(serviceClock.now());
    this.show();
  }

  /** The slider starts at the shared record's first entry. */
  async start() {
    const page = await this.api.get('/v1/log/entries?start=0&end=1');
    if (page.entries.length) {
      const at = Date.parse(b64json(page.entries[0]).at);
      if (Number.isFinite(at)) this.first = at;
    }
    this.range.min = String(Math.floor(this.first / 1000));
  }

  /** Now is later: while live, the slider's right end and thumb follow it. */
  extend(now) {
    this.range.max = String(Math.ceil(now / 1000));
    if (this.range.min === '' || Number(this.range.min) > Math.floor(this.first / 1000)) {
      this.range.min = String(Math.floor(this.first / 1000));
    }
    if (this.at === null && this.settle === null) { // not while the thumb is being moved
      this.range.value = this.range.max;
      if (document.activeElement !== this.field) this.field.value = isoSeconds(now);
    }
  }

  /** Show time `at` (ms), or live (null, or any time not in the past). */
  set(at) {
    this.errorEl.textContent = '';
    const live = at === null || at >= serviceClock.now();
    this.at = live ? null : at;
    if (!live) {
      this.range.value = String(Math.floor(at / 1000));
      this.field.value = isoSeconds(at);
    } else {
      this.extend(serviceClock.now());
    }
    this.show();
    this.onChange(this.at);
    return this.at;
  }

  show() {
    const live = this.at === null;
    this.modeEl.dataset.mode = live ? 'live' : 'past';
    this.modeEl.textContent = live ? 'LIVE' : `AT ${isoSeconds(this.at).replace('T', ' ')}`;
    this.modeEl.title = live ? 'the map shows the service now'
      : 'the map shows the shared record at this time (filings and open conflicts); tracks stay live';
    this.liveButton.disabled = live;
    document.body.classList.toggle('past', !live);
  }
}
