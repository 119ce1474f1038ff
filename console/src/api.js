// The service's native API (/v1), called with the signed-in party's token.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export class Api {
  constructor(token, base = '') {
    this.token = token;
    this.base = base;
  }

  async request(method, path, body) {
    const headers = {Authorization: `Bearer ${this.token}`, Accept: 'application/json'};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.base + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = {detail: text}; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body); }
}
