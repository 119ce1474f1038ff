// The service's native API (/v1), called with the signed-in party's token.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** The next page of a list: the target of an RFC 8288 Link header's rel="next", or null. */
export function nextLink(header) {
  for (const part of (header || '').split(',')) {
    const m = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (m && /;\s*rel="?next"?(\s*;|\s*$)/i.test(m[2])) return m[1];
  }
  return null;
}

export class Api {
  constructor(token, base = '') {
    this.token = token;
    this.base = base;
    this.lists = new Map(); // path -> {etag, result}: the last whole list read, and its first page's tag
    this.pageSize = 1000;
    this.maxItems = 20_000;
  }

  /**
   * Every item of a list route (GET, a JSON array a page), following its Link headers, up to
   * `maxItems`: {items, truncated}. The first page is asked for with the ETag it had last
   * time: while the service answers 304 (nothing changed), the list kept from then is the answer.
   */
  async list(path) {
    const kept = this.lists.get(path);
    const sep = path.includes('?') ? '&' : '?';
    let url = `${path}${sep}limit=${this.pageSize}`;
    let res = await this.send('GET', url, kept ? {'If-None-Match': kept.etag} : {});
    if (res.status === 304 && kept) return kept.result;
    const etag = res.headers.get('ETag');
    const items = [];
    for (;;) {
      const page = await this.parse(res);
      items.push(...page);
      url = nextLink(res.headers.get('Link'));
      if (!url || items.length >= this.maxItems) break;
      res = await this.send('GET', url);
    }
    const result = {items: items.slice(0, this.maxItems), truncated: url !== null || items.length > this.maxItems};
    if (etag) this.lists.set(path, {etag, result});
    return result;
  }

  /**
   * The Features of an area query (POST /v1/query: one Feature a volume, a page of filings at a
   * time, following its Link headers) up to `maxItems` filings, and the conflicts in state
   * `conflicts` with a side among them: {features, conflicts, truncated}.
   */
  async query(area, conflicts = 'open') {
    let url = `/v1/query?limit=${this.pageSize}&conflicts=${conflicts}`;
    const features = [];
    const filings = new Set();
    const met = new Map(); // a conflict whose sides are on two pages comes on both
    let cut = false;
    for (;;) {
      const res = await this.send('POST', url, {}, {area});
      const page = await this.parse(res);
      for (const c of page.conflicts) met.set(c.id, c);
      for (const f of page.features) {
        if (filings.size >= this.maxItems && !filings.has(f.properties.filing_id)) { cut = true; break; }
        filings.add(f.properties.filing_id);
        features.push(f);
      }
      url = nextLink(res.headers.get('Link'));
      if (!url || filings.size >= this.maxItems) break;
    }
    // past the cut, a page's conflicts may be of filings left out
    const conflictsOf = [...met.values()].filter((c) => filings.has(c.a.id) || filings.has(c.b.id));
    return {features, conflicts: conflictsOf, truncated: cut || url !== null};
  }

  /** The raw response to a call with the party's token (`extra`: more headers; `body`: JSON). */
  send(method, path, extra = {}, body = undefined) {
    const headers = {Authorization: `Bearer ${this.token}`, Accept: 'application/json', ...extra};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    return fetch(this.base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
  }

  async parse(res) {
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = {detail: text}; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  async request(method, path, body) {
    return this.parse(await this.send(method, path, {}, body));
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
}
