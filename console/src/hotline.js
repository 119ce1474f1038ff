// The hotline panel: messages in the party's language with their reply deadlines counting
// down and buttons for the allowed replies, and every party's channel health. Fed through
// window.deconflict.setMessages / setChannels; a reply goes to window.deconflict.onReply
// (the hotline API's client plugs in there) and is announced as a "deconflict:reply" event.

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

  setChannels(list) {
    this.channelsEl.replaceChildren(...list.map((c) => {
      const up = c.status !== 'down';
      const li = el('li', {'data-party': c.party, 'data-status': up ? 'up' : 'down',
        title: c.last_heartbeat ? `last heartbeat ${c.last_heartbeat}` : undefined});
      li.append(el('span', {class: up ? 'dot' : 'dot down'}), el('span', {}, `${c.party} ${up ? 'UP' : 'DOWN'}`));
      return li;
    }));
  }

  /** [{id, from, to, code, text, lang?, sent_at?, reply_due?, allowed_replies?, reply?}] */
  setMessages(list) {
    this.messages = list.map((m) => ({...m}));
    this.render();
  }

  render() {
    this.emptyEl.hidden = this.messages.length > 0;
    this.messagesEl.replaceChildren(...this.messages.map((m) => {
      const li = el('li', {'data-message': m.id});
      li.append(el('div', {class: 'muted'}, `${m.from} → ${m.to} · ${m.code ?? ''}`));
      li.append(el('div', {lang: m.lang}, m.text ?? ''));
      if (m.reply) {
        li.append(el('div', {class: 'ok', 'data-reply': m.reply}, `replied ${m.reply}`));
      } else {
        if (m.reply_due) li.append(el('div', {class: 'due', 'data-due': m.reply_due}));
        const box = el('div', {class: 'replies'});
        for (const r of m.allowed_replies ?? REPLIES) {
          const b = el('button', {type: 'button', 'data-reply-button': r}, r);
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
      if (this.onReply()) await this.onReply()(message, reply);
      message.reply = reply;
      window.dispatchEvent(new CustomEvent('deconflict:reply', {detail: {message_id: message.id, reply}}));
      this.render();
    } catch (err) {
      button.disabled = false;
      button.title = String(err.message || err);
    }
  }

  tick() {
    const now = Date.now();
    for (const d of this.messagesEl.querySelectorAll('[data-due]')) {
      const ms = Date.parse(d.dataset.due) - now;
      d.textContent = countdown(ms);
      d.classList.toggle('overdue', ms < 0);
    }
  }
}
