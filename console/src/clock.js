// The service's clock as the console reads it (GET /v1/clock): its time and its rate,
// seconds of service time per real second (1, but in the demo: `deconflict demo --speed`).
// Countdowns, the timeline and the heartbeat period are on this clock, not the browser's.

export class ServiceClock {
  constructor() {
    this.rate = 1;
    this.base = Date.now(); // service time (ms) at `local`
    this.local = performance.now();
  }

  /** Read the service's time (once at sign-in, then now and again: the browser's clock may drift). */
  async sync(api) {
    const sent = performance.now();
    const c = await api.get('/v1/clock');
    const back = performance.now();
    const at = Date.parse(c.now);
    if (!Number.isFinite(at) || !(c.rate >= 0)) return;
    this.rate = c.rate;
    this.base = at;
    this.local = (sent + back) / 2; // the answer was read half way through the round trip
  }

  /** The service's time now, in ms since the epoch. */
  now() {
    return this.base + (performance.now() - this.local) * this.rate;
  }

  /** Real milliseconds that `seconds` of service time take (at least 1 ms; never, at rate 0). */
  realMs(seconds) {
    return this.rate > 0 ? Math.max(1, (seconds * 1000) / this.rate) : Infinity;
  }
}

export const serviceClock = new ServiceClock();
