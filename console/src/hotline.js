// The hotline panel: messages in the party's language with their reply deadlines counting
// down and buttons for the allowed replies, and every party's channel health. Fed by
// HotlineClient (the hotline API: inbox, stream, status, heartbeat) through the same
// setMessages / setChannels that window.deconflict exposes; a reply goes to
// window.deconflict.onReply (HotlineClient.reply unless replaced) and is announced as a
// "deconflict:reply" event. Deadlines count down, and heartbeats go, on the service's
// clock (clock.js: in the demo it runs faster than the browser's).
import {serviceClock} from './clock.js';

const REPLIES = ['WILCO', 'UNABLE', 'STANDBY', 'ROGER'];

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function countdown(ms) {
  const s = Math.abs(Math.round(ms / 1000));
  const text = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  return ms >= 0 ? `reply due in ${text}` : `reply overdue by ${text}`;
}

export class Hotline {
  constructor(root, onReply) {
    this.messagesEl = root.querySelector('#messages');
    this.channelsEl = root.querySelector('#channels');
    this.emptyEl = root.querySelector('#hotline-empty');
    this.onReply = onReply;
    this.messages = [];
    this.timer = setInterval(() => this.tick(), 1000);
  }

  /** [{party, state: 'up'|'down'|'unknown', last_heartbeat?, down_since?}] (`status` is read too). */
  setChannels(list) {
    this.channelsEl.replaceChildren(...list.map((c) => {
      const raw = c.state ?? c.status;
      const state = raw === 'up' || raw === 'down' ? raw : 'unknown';
      const title = state === 'down' && c.down_since ? `down since ${c.down_since}`
        : c.last_heartbeat ? `last heartbeat ${c.last_heartbeat}` : 'no heartbeat heard yet';
      const li = el('li', {'data-party': c.party, 'data-status': state, title});
      li.append(el('span', {class: `dot ${state}`}), el('span', {}, `${c.party} ${state.toUpperCase()}`));
      return li;
    }));
  }

  /** [{id, from, to, code, text, lang?, sent_at?, reply_due?, allowed_replies?, reply_texts?,
   *    reply?, incoming? (false: sent by this party), recipients_state?: [{recipient, state}]}] */
  setMessages(list) {
    this.messages = list.map((m) => ({...m}));
    this.render();
  }

  render() {
    this.emptyEl.hidden = this.messages.length > 0;
    this.messagesEl.replaceChildren(...this.messages.map((m) => {
      const li = el('li', {'data-message': m.id});
      li.append(el('div', {class: 'muted'}, `${m.from} → ${m.to} · ${m.code ?? ''}`));
      li.append(el('div', {lang: m.lang, dir: 'auto', class: 'text'}, m.text ?? ''));
      if (m.incoming === false) {
        for (const r of m.recipients_state ?? []) {
          li.append(el('div', {class: 'muted', 'data-recipient': r.recipient, 'data-state': r.state}, `${r.recipient}: ${r.state}`));
        }
        return li;
      }
      if (m.reply) li.append(el('div', {class: 'ok', 'data-reply': m.reply}, `replied ${m.reply}`));
      const open = !m.reply || m.reply === 'STANDBY'; // STANDBY asks for time: an answer is still due
      if (open && (m.allowed_replies ?? REPLIES).length) {
        if (m.reply_due) li.append(el('div', {class: 'due', 'data-due': m.reply_due}));
        const box = el('div', {class: 'replies'});
        for (const r of m.allowed_replies ?? REPLIES) {
          const b = el('button', {type: 'button', 'data-reply-button': r, title: m.reply_texts?.[r]}, r);
          b.addEventListener('click', () => this.reply(m, r, b));
          box.append(b);
        }
        li.append(box);
      }
      return li;
    }));
    this.tick();
  }

  async reply(message, reply, button) {
    button.disabled = true;
    try {
      const send = this.onReply();
      if (send) await send(message, reply);
      const held = this.messages.find((m) => m.id === message.id) ?? message;
      held.reply = reply;
      window.dispatchEvent(new CustomEvent('deconflict:reply', {detail: {message_id: message.id, reply}}));
      this.render();
    } catch (err) {
      button.disabled = false;
      button.title = String(err.message || err);
    }
  }

  tick() {
    const now = serviceClock.now();
    for (const d of this.messagesEl.querySelectorAll('[data-due]')) {
      const ms = Date.parse(d.dataset.due) - now;
      d.textContent = countdown(ms);
      d.classList.toggle('overdue', ms < 0);
    }
  }
}

// -- the hotline API's client ----------------------------------------------------------

const STATUS_MS = 10000;
const SHOWN = 100;
/** Above this many messages touched at once (a stream replayed from the start), reload the inbox. */
const RELOAD_ABOVE = 10;

function delivery(view, party) {
  return (view.deliveries ?? []).find((d) => d.recipient === party);
}

/** The panel's form of a message view of the API (`party` reads it). */
export function panelMessage(view, party, replyTexts) {
  const mine = delivery(view, party);
  const base = {
    id: view.id, code: view.code, from: view.sender, to: (view.recipients ?? []).join(', '),
    text: view.text, lang: view.language, sent_at: view.sent_at,
  };
  if (!mine) {
    return {...base, incoming: false, recipients_state: (view.deliveries ?? []).map((d) => ({
      recipient: d.recipient,
      state: d.reply ? `replied ${d.reply}` : d.delivered_at ? 'delivered' : 'not yet delivered',
    }))};
  }
  return {
    ...base, incoming: true, reply: mine.reply, reply_due: mine.reply_due, delivered_at: mine.delivered_at,
    allowed_replies: view.replies ?? [], reply_texts: replyTexts.get(view.id),
  };
}

export class HotlineClient {
  /**
   * @param {import('./api.js').Api} api  the signed-in party's API
   * @param {{id: string}} me
   * @param {Hotline} panel
   */
  constructor(api, me, panel) {
    this.api = api;
    this.me = me;
    this.panel = panel;
    this.views = new Map(); // id -> the API's view
    this.replyTexts = new Map(); // id -> {reply code: text in this party's language}
    this.dirty = new Set();
    this.flushTimer = null;
    this.delivering = new Set();
    this.heartbeats = 0;
    this.lastHeartbeat = null;
    this.timers = [];
  }

  async start() {
    await this.heartbeat(); // first, so that the lines shown include this party's own
    await Promise.all([this.loadInbox(), this.loadStatus()]);
    this.timers.push(setInterval(() => this.loadStatus().catch(() => {}), STATUS_MS));
  }

  stop() {
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.heartbeatTimer);
  }

  async heartbeat() {
    let period = 30;
    try {
      const r = await this.api.post('/v1/hotline/heartbeat');
      this.heartbeats += 1;
      this.lastHeartbeat = r.last_heartbeat;
      period = r.heartbeat_period_s || period;
    } catch { /* the next one may get through; the status shows what the others see */ }
    this.heartbeatTimer = setTimeout(() => this.heartbeat(), Math.max(100, serviceClock.realMs(period)));
  }

  async loadStatus() {
    this.panel.setChannels(await this.api.get('/v1/hotline/status'));
  }

  async loadInbox() {
    const list = await this.api.get(`/v1/hotline/messages?box=all&limit=${SHOWN}`);
    this.views = new Map(list.map((v) => [v.id, v]));
    this.show();
  }

  async reloadOne(id) {
    try {
      this.views.set(id, await this.api.get(`/v1/hotline/messages/${encodeURIComponent(id)}`));
    } catch (err) {
      if (err?.status === 404) this.views.delete(id);
      else throw err;
    }
  }

  /** A stream event (see deconflict/api/hotline.py): refresh what it touched. */
  onEvent(e) {
    const d = e.data ?? {};
    if (e.type === 'party_up' || e.type === 'party_down') {
      this.loadStatus().catch(() => {});
      return;
    }
    const id = typeof d.message === 'string' ? d.message : d.message?.id;
    if (!id) return;
    if (e.type === 'message' && Array.isArray(d.replies)) {
      this.replyTexts.set(id, Object.fromEntries(d.replies.map((r) => [r.reply, r.text])));
    }
    this.dirty.add(id);
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => this.flush(), 50);
  }

  async flush() {
    const ids = [...this.dirty];
    this.dirty.clear();
    try {
      if (ids.length > RELOAD_ABOVE) await this.loadInbox();
      else { await Promise.all(ids.map((id) => this.reloadOne(id))); this.show(); }
    } catch (err) {
      for (const id of ids) this.dirty.add(id); // try again with the next event or poll
    }
  }

  show() {
    const views = [...this.views.values()].sort((a, b) => (a.sent_at < b.sent_at ? 1 : a.sent_at > b.sent_at ? -1 : 0));
    const shown = views.slice(0, SHOWN);
    this.views = new Map(shown.map((v) => [v.id, v]));
    this.panel.setMessages(shown.map((v) => panelMessage(v, this.me.id, this.replyTexts)));
    // shown on screen: the first layer of acknowledgement
    for (const v of shown) {
      const mine = delivery(v, this.me.id);
      if (mine && !mine.delivered_at && !this.delivering.has(v.id)) {
        this.delivering.add(v.id);
        this.api.post(`/v1/hotline/messages/${encodeURIComponent(v.id)}/delivered`)
          .then((r) => { Object.assign(mine, {delivered_at: r.delivery.delivered_at}); })
          .catch(() => { this.delivering.delete(v.id); });
      }
    }
  }

  /** Send `reply` to message `message` (the panel's form); the server's view replaces ours. */
  async reply(message, reply) {
    const r = await this.api.post(`/v1/hotline/messages/${encodeURIComponent(message.id)}/reply`, {reply});
    const view = this.views.get(message.id);
    if (view) {
      view.deliveries = (view.deliveries ?? []).map((d) => (d.recipient === this.me.id ? r.delivery : d));
    }
    return r;
  }
}
