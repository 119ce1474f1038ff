// The shared record as the console reads it: the log's entries (kept in step incrementally)
// indexed by filing version, and RFC 9162 inclusion proofs checked in the browser.

const FILING_KINDS = new Set(['filing_created', 'filing_versioned', 'state_changed', 'filing_withdrawn']);

function b64bytes(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function unhex(text) {
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

async function sha256(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { buf.set(p, o); o += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

export const canVerify = () => !!(globalThis.crypto && crypto.subtle);

/** RFC 9162 leaf hash: SHA-256(0x00 || entry). */
export const leafHash = (entry) => sha256(new Uint8Array([0]), entry);

/** RFC 9162 section 2.1.3.2: does `path` prove leaf `index` (hash `leaf`) in the tree of
 * `size` leaves whose root is `rootHex`? */
export async function verifyInclusion(index, size, leaf, pathHex, rootHex) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = leaf;
  const one = new Uint8Array([1]);
  for (const h of pathHex) {
    const p = unhex(h);
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(one, p, r);
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(one, r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 && hex(r) === rootHex;
}

export class LogIndex {
  constructor(api) {
    this.api = api;
    this.next = 0;
    this.byVersion = new Map(); // "id@version" -> {index, kind, at, bytes}
  }

  /** Index the entry at `index` (its base64 text) if it records a filing version; that version's record, else null. */
  index(index, text) {
    const bytes = b64bytes(text);
    const entry = JSON.parse(new TextDecoder().decode(bytes));
    if (!FILING_KINDS.has(entry.kind) || !entry.body?.id) return null;
    const hit = {index, kind: entry.kind, at: entry.at, bytes, id: entry.body.id, version: entry.body.version};
    this.byVersion.set(`${hit.id}@${hit.version}`, hit);
    return hit;
  }

  /** Read the entries appended since the last call. */
  async sync() {
    for (;;) {
      const page = await this.api.get(`/v1/log/entries?start=${this.next}`);
      page.entries.forEach((text, i) => this.index(page.start + i, text));
      if (page.end === this.next) return;
      this.next = page.end;
    }
  }

  /**
   * The entry at `index` if it records this filing version (else null): the service's
   * hint (a version's `leaf_index`), checked here, so that the whole log need not be read.
   */
  async entryAt(index, filingId, version) {
    const page = await this.api.get(`/v1/log/entries?start=${index}&end=${index + 1}`);
    if (page.start !== index || page.entries.length !== 1) return null;
    const hit = this.index(index, page.entries[0]);
    return hit && hit.id === filingId && hit.version === version ? hit : null;
  }

  /**
   * The receipt of a filing version, with its inclusion proof checked against the latest
   * signed head. `hint`: where the service says its entry is; when that entry is not the
   * version's, or there is no hint, the log is read from where it was last read.
   */
  async receipt(filingId, version, hint = null) {
    const key = `${filingId}@${version}`;
    let hit = this.byVersion.get(key);
    if (!hit && Number.isInteger(hint)) hit = await this.entryAt(hint, filingId, version);
    if (!hit) { await this.sync(); hit = this.byVersion.get(key); }
    if (!hit) return null;
    const sth = await this.api.get('/v1/log/sth');
    const receipt = {leaf_index: hit.index, kind: hit.kind, at: hit.at, tree_size: sth.size,
      root: sth.root, sth_timestamp_ms: sth.timestamp_ms, entry_hash: null, audit_path: null, verified: null};
    if (hit.index >= sth.size) return receipt;
    const proof = await this.api.get(`/v1/log/proof/inclusion?index=${hit.index}&size=${sth.size}`);
    receipt.audit_path = proof.audit_path.length;
    if (canVerify()) {
      const leaf = await leafHash(hit.bytes);
      receipt.entry_hash = hex(leaf);
      receipt.verified = await verifyInclusion(hit.index, sth.size, leaf, proof.audit_path, sth.root);
    }
    return receipt;
  }
}
