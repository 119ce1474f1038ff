// The operations console: sign in as a party, then a live map of the filings,
// reservations and conflicts the API reports (polled, and refreshed at once on every event
// of the party's hotline stream: a conflict warning, a notice of activity), a timeline to
// look at any past moment from the shared record (GET /v1/log/replay), a filing's versions
// and receipt on click, tracks fed through window.deconflict, and the hotline panel on the
// hotline API.
import {Api, ApiError} from './api.js';
import {serviceClock} from './clock.js';
import {Hotline, HotlineClient} from './hotline.js';
import {hex, leafHash, LogIndex, verifyInclusion} from './ledger.js';
import {
  conflictFeatures, createMap, filingFeatures, PALETTE, popup, renderedIds, sourceIds,
} from './map.js';
import {TrackOverlay} from './overlay.js';
import {EventStream} from './stream.js';
import {Timeline} from './timeline.js';
import {Tracks} from './tracks.js';

const TOKEN_KEY = 'deconflict.token';
const POLL_MS = 1000;
const TRACKS_MS = 1000;
const CLOCK_SYNC_MS = 60_000; // the service's time is read again this often (clock.js) // the live picture (GET /v1/tracks, /v1/tactical/alerts) is polled this often
/** A stream event asks for a refresh this soon (events come in bursts: one refresh each burst). */
const EVENT_REFRESH_MS = 100;
// Past this many tracks, callsigns are drawn from zoom LABEL_ZOOM up (hover shows them at
// any zoom): thousands of labels clutter the picture and their placement costs frames.
const LABEL_ALL_UP_TO = 500;
const LABEL_ZOOM = 7;
// Past the lists' cut (api.maxItems), the live map reads the filings in view instead
// (POST /v1/query): those active from now to VIEW_AHEAD_MS ahead, in a view at most
// VIEW_MAX_DEG a side about its centre. The lists are read again every VIEW_RECHECK refreshes.
const VIEW_AHEAD_MS = 366 * 86_400_000;
const VIEW_MAX_DEG = 15; // the service's query reaches at most 1,500 km from its centre
const VIEW_RECHECK = 30;
const $ = (sel) => document.querySelector(sel);

const colors = new Map();
function colorOf(party) {
  if (party === undefined || party === null) return PALETTE[PALETTE.length - 1];
  if (!colors.has(party)) colors.set(party, PALETTE[colors.size % (PALETTE.length - 1)]);
  return colors.get(party);
}

const state = {
  api: null, me: null, map: null, log: null, counts: {filings: 0, reservations: 0, conflicts: 0, tracks: 0},
  refreshes: 0, fitted: false, userMoved: false, overlay: null, signature: '', centres: new Map(), extra: new Map(), timer: null,
  pollMs: POLL_MS, running: null, again: false, soon: null, stream: null, hotline: null, timeline: null,
  at: null, drawnAt: null, // null: live; else the time (ms) the map shows, from the shared record
  byView: false, // more filings than the lists' cut: the live map shows those in view (POST /v1/query)
  streamMode: 'stopped', streamEvents: 0, fed: {filings: [], reservations: [], conflicts: []},
  clockTimer: null, trackFeed: false, trackTimer: null, // tracks from the service's live picture, until setTracks takes over
};
let readyResolve;
const ready = new Promise((r) => { readyResolve = r; });
let mapLoaded = null;
const tracks = new Tracks(colorOf);
const hotline = new Hotline(document, () => api.onReply);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function setCount(name, n) {
  state.counts[name] = n;
  $(`#count-${name}`).textContent = String(n);
}

// -- sign in -------------------------------------------------------------------------

async function signIn(token) {
  const candidate = new Api(token);
  const me = await candidate.get('/v1/me');
  return {api: candidate, me};
}

function showSignIn(message) {
  $('#app').hidden = true;
  $('#signin').hidden = false;
  $('#signout').hidden = true;
  $('#who').textContent = '';
  $('#signin-error').textContent = message || '';
}

async function begin(token, fromStorage) {
  try {
    const {api: a, me} = await signIn(token);
    sessionStorage.setItem(TOKEN_KEY, token);
    if (state.map) { location.reload(); return; } // signed out mid-session: start afresh
    state.api = a;
    state.me = me;
    await start();
  } catch (err) {
    sessionStorage.removeItem(TOKEN_KEY);
    const why = err instanceof ApiError ? `${err.message} (HTTP ${err.status})` : `cannot reach the service: ${err}`;
    showSignIn(fromStorage ? `Signed out: ${why}` : `Sign-in refused: ${why}`);
  }
}

// -- the live picture ------------------------------------------------------------------

async function sideCentre(ref) {
  // a conflict side not among the current filings (e.g. just ended): fetch it once per version
  const key = `${ref.id}@${ref.version}`;
  if (!state.extra.has(key)) {
    try {
      const f = await state.api.get(`/v1/${ref.type}s/${encodeURIComponent(ref.id)}`);
      state.extra.set(key, filingFeatures([f], colorOf, new Set()).centres.get(f.id));
    } catch {
      state.extra.set(key, null);
    }
  }
  return state.extra.get(key);
}

/**
 * The live lists, every page (each 304 while unchanged: api.js). When a list holds more than
 * api.maxItems, the filings in view and their open conflicts instead (`byView`; see viewArea),
 * and the lists only every VIEW_RECHECK refreshes, to learn whether one still does.
 */
async function livePicture(api) {
  if (!state.byView || state.refreshes % VIEW_RECHECK === 0) {
    const [intents, constraints, conflicts] = await Promise.all([
      api.list('/v1/intents'), api.list('/v1/constraints'), api.list('/v1/conflicts'),
    ]);
    state.byView = intents.truncated || constraints.truncated || conflicts.truncated;
    if (!state.byView) return {intents: intents.items, constraints: constraints.items, conflicts: conflicts.items};
  }
  // the filings in view and their open conflicts (a side may be out of view)
  const inView = await api.query(viewArea(state.map, serviceClock.now()));
  const filings = filingsOf(inView.features);
  return {
    intents: filings.filter((f) => f.type === 'intent'), constraints: filings.filter((f) => f.type === 'constraint'),
    conflicts: inView.conflicts, byView: {truncated: inView.truncated},
  };
}

/** The map's view as an area to query (a volume Feature): the view, at most VIEW_MAX_DEG a side
 * about its centre, every altitude, from `now` (ms) to VIEW_AHEAD_MS ahead. */
function viewArea(map, now) {
  const b = map.getBounds(), c = map.getCenter(), half = VIEW_MAX_DEG / 2;
  const w = Math.max(b.getWest(), c.lng - half, -180), e = Math.min(b.getEast(), c.lng + half, 180);
  const s = Math.max(b.getSouth(), c.lat - half, -85), n = Math.min(b.getNorth(), c.lat + half, 85);
  return {
    type: 'Feature',
    geometry: {type: 'Polygon', coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
    properties: {
      altitude_lower_m: -1000, altitude_upper_m: 100_000,
      time_start: new Date(now).toISOString(), time_end: new Date(now + VIEW_AHEAD_MS).toISOString(),
    },
  };
}

/** Filings (as the lists give them, volumes as Features) from an area query's Features. */
function filingsOf(features) {
  const filings = new Map();
  for (const f of features) {
    const own = {}, volume = {};
    for (const [k, v] of Object.entries(f.properties)) {
      if (k.startsWith('filing_')) own[k.slice(7)] = v; else volume[k] = v;
    }
    if (!filings.has(own.id)) filings.set(own.id, {...own, volumes: []});
    filings.get(own.id).volumes.push({type: 'Feature', geometry: f.geometry, properties: volume});
  }
  return [...filings.values()];
}

/** The filings and open conflicts at `at` (ms), rebuilt by the server from the shared record. */
async function pastPicture(api, at) {
  const snap = await api.get(`/v1/log/replay?at=${encodeURIComponent(new Date(at).toISOString())}`);
  return {
    intents: snap.filings.filter((f) => f.type === 'intent'),
    constraints: snap.filings.filter((f) => f.type === 'constraint'),
    conflicts: snap.conflicts,
    entries: snap.entries,
  };
}

/** Whether [[west, south], [east, north]] lies within the map's view. */
function inView(map, [[w, s], [e, n]]) {
  const v = map.getBounds();
  return w >= v.getWest() && e <= v.getEast() && s >= v.getSouth() && n <= v.getNorth();
}

/** Redraw now, or as soon as the redraw under way has finished (never two at once). */
function refresh() {
  if (state.running) { state.again = true; return state.running; }
  state.running = (async () => {
    try {
      do {
        state.again = false;
        await draw();
      } while (state.again);
    } finally {
      state.running = null;
    }
  })();
  return state.running;
}

async function draw() {
  const api = state.api;
  const at = state.at;
  if (at !== null && at === state.drawnAt) { state.refreshes += 1; return; } // the past does not change
  const {intents, constraints, conflicts, byView} = at === null ? await livePicture(api) : await pastPicture(api, at);
  if (at !== state.at) { state.again = true; return; } // the timeline moved meanwhile
  if (state.refreshes % 30 === 0) renderParties(await api.get('/v1/parties'));
  const signature = JSON.stringify([at, intents.map((f) => f.ovn), constraints.map((f) => f.ovn), conflicts.map((c) => c.id)]);
  if (signature !== state.signature) {
    const conflicted = new Set(conflicts.flatMap((c) => [c.a.id, c.b.id]));
    const fi = filingFeatures(intents, colorOf, conflicted);
    const fr = filingFeatures(constraints, colorOf, conflicted);
    const centres = new Map([...fi.centres, ...fr.centres]);
    for (const c of conflicts) {
      for (const side of [c.a, c.b]) {
        if (!centres.has(side.id) && !byView) { // in view: a side out of view is not fetched
          const centre = await sideCentre(side);
          if (centre) centres.set(side.id, centre);
        }
      }
    }
    const cf = conflictFeatures(conflicts, centres);
    const map = state.map;
    map.getSource('filings').setData({type: 'FeatureCollection', features: fi.features});
    map.getSource('reservations').setData({type: 'FeatureCollection', features: fr.features});
    map.getSource('conflicts').setData({type: 'FeatureCollection', features: cf});
    state.fed = {
      filings: fi.features.map((f) => f.properties.vid),
      reservations: fr.features.map((f) => f.properties.vid),
      conflicts: cf.filter((f) => f.geometry.type === 'Point').map((f) => f.properties.cid),
    };
    setCount('filings', new Set(fi.features.map((f) => f.properties.fid)).size);
    setCount('reservations', new Set(fr.features.map((f) => f.properties.fid)).size);
    setCount('conflicts', new Set(cf.map((f) => f.properties.cid)).size);
    state.signature = signature;
    const bounds = fi.bounds && fr.bounds
      ? [[Math.min(fi.bounds[0][0], fr.bounds[0][0]), Math.min(fi.bounds[0][1], fr.bounds[0][1])],
        [Math.max(fi.bounds[1][0], fr.bounds[1][0]), Math.max(fi.bounds[1][1], fr.bounds[1][1])]]
      : fi.bounds || fr.bounds;
    // the view follows the picture (everything filed in sight) until the user moves it
    if (bounds && !byView && !state.userMoved && !(state.fitted && inView(map, bounds))) {
      map.fitBounds(bounds, {padding: 60, maxZoom: 9, duration: 0});
      state.fitted = true;
    }
  }
  state.drawnAt = at;
  state.refreshes += 1;
  if (at === null) state.timeline?.extend(serviceClock.now());
  const how = {live: 'stream live', polling: 'stream unavailable: polling events', connecting: 'stream connecting',
    stopped: 'no stream'}[state.streamMode];
  const rate = serviceClock.rate === 1 ? '' : ` · service time ×${serviceClock.rate}`;
  $('#updated').textContent = `updated ${new Date(serviceClock.now()).toISOString().slice(11, 19)}Z${rate} · ${how} · polled every ${state.pollMs / 1000} s${shown(api.maxItems, byView)}`;
}

/** What the status line says of the picture in view (see livePicture). */
function shown(max, byView) {
  if (!byView) return '';
  return ` · over ${max} in a list: showing the filings in view and their conflicts` +
    (byView.truncated ? ` (the first ${max} filings by id)` : '');
}

/** The service's live picture onto the map: every track's last report, and the open
 * tactical conflict alerts between two tracks (time to closest approach, miss distance). */
async function pollTracks() {
  if (!state.trackFeed || !state.api) return;
  try {
    const [picture, alerts] = await Promise.all([state.api.get('/v1/tracks'), state.api.get('/v1/tactical/alerts')]);
    if (!state.trackFeed) return;
    tracks.set(picture.tracks.map((t) => ({
      id: t.id, callsign: t.callsign ?? t.track, party: t.party, lon: t.lon, lat: t.lat,
      heading_deg: t.trk_deg, altitude_m: t.alt_m, speed_mps: t.gs_mps,
    })));
    tracks.setTactical(alerts.filter((a) => a.kind === 'conflict' && a.track_b).map((a) => ({
      a: a.track_a, b: a.track_b, time_to_cpa_s: a.figures?.t_cpa_s ?? null, distance_m: a.figures?.d_cpa_m ?? null,
    })));
    flushTracks();
  } catch { /* the next poll tries again */ }
}

function signedOut(message) {
  clearTimeout(state.timer);
  clearInterval(state.trackTimer);
  clearInterval(state.clockTimer);
  state.trackFeed = false;
  state.stream?.stop();
  state.hotline?.stop();
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(`Signed out: ${message}`);
}

async function refreshReporting() {
  try {
    await refresh();
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { signedOut(err.message); return false; }
    $('#updated').textContent = `connection lost (${err.message || err}); retrying`;
    return true;
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = setTimeout(async () => {
    if (await refreshReporting()) schedule();
  }, state.pollMs);
}

/** A stream event: the picture may have changed (a conflict warning, a notice of activity). */
function refreshSoon() {
  if (state.soon) return;
  state.soon = setTimeout(() => { state.soon = null; refreshReporting(); }, EVENT_REFRESH_MS);
}

function onStreamEvent(e) {
  state.streamEvents += 1;
  state.hotline?.onEvent(e);
  if (state.at === null) refreshSoon();
  window.dispatchEvent(new CustomEvent('deconflict:event', {detail: e}));
}

function renderParties(parties) {
  const list = parties.filter((p) => p.role === 'operator').sort((a, b) => a.id.localeCompare(b.id));
  for (const p of list) colorOf(p.id);
  $('#parties').replaceChildren(...list.map((p) => {
    const li = el('li', {'data-party': p.id});
    const sw = el('span', {class: 'swatch'});
    sw.style.background = colorOf(p.id);
    li.append(sw, el('span', {}, `${p.name || p.id} (${p.id})`));
    return li;
  }));
}

// -- hover and click -----------------------------------------------------------------

const when = (p) => `${p.start.replace('T', ' ').replace('Z', '')}Z → ${p.end.slice(11).replace('Z', '')}Z`;

function hoverContent(layer, p) {
  const box = el('div', {'data-testid': 'hover'});
  if (layer === 'tracks') {
    box.append(el('b', {}, p.callsign), el('div', {}, `${p.party ?? 'unknown party'} · heading ${Math.round(p.heading_deg)}°`));
    if (p.altitude_m !== null && p.altitude_m !== undefined) box.append(el('div', {}, `altitude ${Math.round(p.altitude_m)} m`));
    if (p.speed_mps !== null && p.speed_mps !== undefined) box.append(el('div', {}, `speed ${Math.round(p.speed_mps)} m/s`));
    return box;
  }
  if (layer === 'conflict-marks') {
    box.append(el('b', {}, 'Conflict'), el('div', {}, `${p.a} × ${p.b}`),
      el('div', {}, `window ${when(p)}`));
    if (p.h !== undefined && p.h !== null) { // the shared record's replay keeps the sides and window only
      box.append(el('div', {}, `separation ${Math.round(p.h)} m / ${Math.round(p.v)} m / ${Math.round(p.t)} s ` +
        `(agreed ${Math.round(p.hb)} m / ${Math.round(p.vb)} m / ${Math.round(p.tb)} s)`));
    }
    return box;
  }
  box.append(el('b', {}, `${p.owner} · ${p.kind}`),
    el('div', {}, `${p.type} v${p.version} · ${p.state}${p.conflicted ? ' · in conflict' : ''}`),
    el('div', {'data-testid': 'hover-altitude'}, `altitude ${Math.round(p.lower)}–${Math.round(p.upper)} m`),
    el('div', {'data-testid': 'hover-time'}, `time ${when(p)}`));
  return box;
}

function installInteractions(map) {
  const tip = popup();
  const layers = ['conflict-marks', 'filings-fill', 'reservations-fill'];
  // a track (drawn over the map) first, then the topmost feature under the pointer
  map.on('mousemove', (e) => {
    const track = state.overlay?.hit(e.point);
    const hit = track ? null : map.queryRenderedFeatures(e.point, {layers})[0];
    if (!track && !hit) { map.getCanvas().style.cursor = ''; tip.remove(); return; }
    map.getCanvas().style.cursor = 'pointer';
    const content = track ? hoverContent('tracks', track.track) : hoverContent(hit.layer.id, hit.properties);
    tip.setLngLat(track ? [track.track.lon, track.track.lat] : e.lngLat).setDOMContent(content).addTo(map);
  });
  map.getCanvas().addEventListener('mouseleave', () => { map.getCanvas().style.cursor = ''; tip.remove(); });
  map.on('click', (e) => {
    const hit = map.queryRenderedFeatures(e.point, {layers: ['filings-fill', 'reservations-fill']})[0];
    if (hit) showFiling(hit.properties.type, hit.properties.fid);
  });
}

async function showFiling(type, id) {
  const box = $('#details');
  box.replaceChildren(el('h2', {}, 'Filing'), el('p', {class: 'muted'}, 'loading…'));
  const api = state.api;
  try {
    const versions = await api.get(`/v1/${type}s/${encodeURIComponent(id)}/versions`);
    const latest = versions[versions.length - 1];
    const head = el('p', {'data-filing': id});
    head.append(el('b', {}, `${type} of ${latest.owner} · ${latest.kind}`), el('br'), el('code', {}, id));
    const table = el('table', {'data-testid': 'versions'});
    const hdr = el('tr');
    for (const h of ['v', 'state', 'volumes', 'ovn', 'leaf']) hdr.append(el('th', {}, h));
    table.append(hdr);
    state.log = state.log || new LogIndex(api);
    // each version's place in the shared record: as the service gives it (the receipt below
    // checks the latest's entry and proof), else found by reading the log (older services)
    if (versions.some((v) => !Number.isInteger(v.leaf_index))) await state.log.sync();
    for (const v of versions) {
      const tr = el('tr', {'data-version': v.version});
      const leaf = Number.isInteger(v.leaf_index) ? v.leaf_index : state.log.byVersion.get(`${id}@${v.version}`)?.index;
      for (const cell of [v.version, v.state, v.volumes.length, v.ovn.slice(0, 10) + '…', leaf !== undefined ? `#${leaf}` : '—']) {
        tr.append(el('td', {}, String(cell)));
      }
      table.append(tr);
    }
    const receiptBox = el('div', {class: 'receipt', 'data-testid': 'receipt'}, 'receipt: checking the shared record…');
    box.replaceChildren(el('h2', {}, 'Filing'), head, table, receiptBox);
    const r = await state.log.receipt(id, latest.version, latest.leaf_index);
    receiptBox.replaceChildren();
    if (!r) { receiptBox.textContent = 'receipt: this version is not in the shared record'; return; }
    receiptBox.dataset.leafIndex = String(r.leaf_index);
    receiptBox.dataset.treeSize = String(r.tree_size);
    receiptBox.append(el('b', {}, `Receipt of v${latest.version}`),
      el('div', {'data-testid': 'receipt-leaf'}, `leaf #${r.leaf_index} (${r.kind}, ${r.at})`));
    if (r.entry_hash) receiptBox.append(el('div', {}, 'entry hash '), el('code', {}, r.entry_hash));
    if (r.audit_path === null) {
      receiptBox.append(el('div', {}, `not yet under a signed tree head (size ${r.tree_size})`));
      return;
    }
    receiptBox.append(el('div', {}, `inclusion proof: ${r.audit_path} hashes to the signed tree head of size ` +
      `${r.tree_size} (root ${r.root.slice(0, 16)}…, signed ${new Date(r.sth_timestamp_ms).toISOString()})`));
    const verdict = r.verified === null
      ? el('div', {'data-testid': 'receipt-verified', 'data-verified': 'unknown'}, 'not checked here (the browser offers no SHA-256 outside https or localhost)')
      : el('div', {'data-testid': 'receipt-verified', 'data-verified': String(r.verified), class: r.verified ? 'ok' : 'bad'},
        r.verified ? 'inclusion proof verified in this browser ✓' : 'inclusion proof does NOT verify ✗');
    receiptBox.append(verdict);
  } catch (err) {
    box.replaceChildren(el('h2', {}, 'Filing'), el('p', {class: 'bad'}, `could not load ${id}: ${err.message || err}`));
  }
}

// -- start -----------------------------------------------------------------------------

async function start() {
  $('#signin').hidden = true;
  $('#app').hidden = false;
  $('#signout').hidden = false;
  $('#who').textContent = `signed in as ${state.me.name || state.me.id} (${state.me.id}, ${state.me.role})`;
  await serviceClock.sync(state.api).catch(() => {}); // before anything shows a time
  state.clockTimer = setInterval(() => serviceClock.sync(state.api).catch(() => {}), CLOCK_SYNC_MS);
  const base = new URL('.', document.baseURI).href;
  const {map, loaded} = createMap($('#map'), base);
  state.map = map;
  mapLoaded = loaded;
  await loaded;
  state.overlay = new TrackOverlay(map, tracks, {labelAllUpTo: LABEL_ALL_UP_TO, labelZoom: LABEL_ZOOM});
  installInteractions(map);
  map.on('movestart', (e) => { if (e.originalEvent) state.userMoved = true; }); // a pan or zoom by hand
  map.on('moveend', () => { if (state.byView && state.at === null) refreshSoon(); }); // the view is the query
  flushTracks();
  state.timeline = new Timeline($('#timeline'), state.api, (at) => { state.at = at; refreshReporting(); });
  state.timeline.start().catch(() => {});
  await refresh();
  // the hotline panel, then the stream that keeps it (and the map) live
  state.hotline = new HotlineClient(state.api, state.me, hotline);
  if (!api.onReply) api.onReply = (m, r) => state.hotline.reply(m, r);
  try { await state.hotline.start(); } catch (err) {
    $('#hotline-empty').textContent = `hotline unavailable: ${err.message || err}`;
  }
  state.stream = new EventStream(state.api, onStreamEvent, (mode) => {
    state.streamMode = mode;
    $('#hotline').dataset.stream = mode;
    $('#stream-mode').textContent = mode;
  });
  state.stream.start(0);
  state.trackFeed = true;
  state.trackTimer = setInterval(pollTracks, TRACKS_MS);
  await pollTracks();
  readyResolve();
  schedule();
}
window.addEventListener('deconflict:unauthorized', () => signedOut('the token is no longer accepted'));

function flushTracks() {
  if (!state.overlay) return;
  state.overlay.schedule();
  if (tracks.tacticalDirty) {
    state.map.getSource('tactical').setData(tracks.tactical);
    tracks.tacticalDirty = false;
  }
  setCount('tracks', tracks.list.length);
}

/** The console's entry point for tests, the bench, and the parts still to come. */
const api = {
  /** Resolves once signed in, the map loaded and the first refresh drawn. */
  ready,
  /** Replace the tracks: [{id, callsign, party, lon, lat, heading_deg, altitude_m?, speed_mps?}]
   * (stops the feed from the service's live picture, which otherwise fills them every second). */
  setTracks(list) { state.trackFeed = false; const n = tracks.set(list); flushTracks(); return n; },
  /** Predicted tactical conflicts: [{a, b, time_to_cpa_s, distance_m?}] between track ids. */
  setTacticalConflicts(list) { const n = tracks.setTactical(list); flushTracks(); return n; },
  /** Hotline messages and every party's channel health (see hotline.js for the fields). */
  setMessages(list) { hotline.setMessages(list); },
  setChannels(list) { hotline.setChannels(list); },
  /** async (message, reply) => void: sends a hotline reply (the hotline client's unless replaced). */
  onReply: null,
  /** What the console put on the map (distinct filings, reservations, conflicts, tracks). */
  counts() { return {...state.counts, refreshes: state.refreshes}; },
  /** The event stream: mode ('connecting'|'live'|'polling'|'stopped'), last event number, connections made. */
  stream() {
    const s = state.stream;
    return {mode: state.streamMode, last: s?.last ?? 0, connections: s?.connections ?? 0, events: state.streamEvents};
  },
  /** Drop the stream's connection: it reconnects with Last-Event-ID. */
  dropStream() { state.stream?.reconnect(); },
  /** Poll the API every `ms` (the stream refreshes at once regardless). */
  setPollInterval(ms) { state.pollMs = Math.max(100, Number(ms) || POLL_MS); schedule(); },
  /** Items a list page asks for, and most items read from a list (api.js). */
  setListPages(pageSize, maxItems) {
    state.api.pageSize = Math.max(1, Number(pageSize) || 1000);
    state.api.maxItems = Math.max(1, Number(maxItems) || 20_000);
    state.api.lists.clear();
    state.byView = false; // the lists decide again
  },
  /** The service's clock as the console holds it: {now (ms), rate}. */
  clock() { return {now: serviceClock.now(), rate: serviceClock.rate}; },
  /** The hotline client's heartbeats sent so far. */
  heartbeats() { return state.hotline?.heartbeats ?? 0; },
  /** Show the map at a past time (ms since the epoch or RFC 3339), or live (null). */
  setTime(at) { return state.timeline.set(at === null ? null : (typeof at === 'number' ? at : Date.parse(at))); },
  /** null when live, else the time (ms) shown. */
  get at() { return state.at; },
  /** What the console gave the map, one entry per feature, duplicates kept: volumes as
   * `filing id#volume index`, a conflict's id per marker, a track's id per track. */
  fed() { return {...state.fed, tracks: tracks.list.map((t) => t.id)}; },
  /** Distinct ids drawn on screen now, per layer group (MapLibre queryRenderedFeatures). */
  rendered() {
    const m = state.map;
    return {
      filings: [...renderedIds(m, ['filings-fill'], 'fid')],
      reservations: [...renderedIds(m, ['reservations-fill'], 'fid')],
      conflicts: [...renderedIds(m, ['conflict-marks'], 'cid')],
      tracks: [...new Set(state.overlay.drawn.map((d) => d.track.id))],
    };
  },
  /** Distinct ids MapLibre holds per source (querySourceFeatures). */
  sources() {
    const m = state.map;
    return {
      filings: [...sourceIds(m, 'filings', 'fid')],
      reservations: [...sourceIds(m, 'reservations', 'fid')],
      conflicts: [...sourceIds(m, 'conflicts', 'cid', ['==', ['geometry-type'], 'Point'])],
      tracks: tracks.list.map((t) => t.id),
      tactical: tracks.tacticalList.map((c) => `${c.a} ${c.b}`),
    };
  },
  /** Resolves when the map has drawn everything it was given (the tracks' overlay included). */
  idle() {
    return mapLoaded.then(() => new Promise((r) => { state.map.once('idle', () => r()); state.map.triggerRepaint(); }))
      .then(() => new Promise((r) => requestAnimationFrame(() => r())));
  },
  /** The tracks drawn at the overlay's last redraw: [{id, x, y, trail: [[x, y], ...], label}] (CSS px in the map). */
  drawnTracks() {
    return state.overlay.drawn.map((d) => ({id: d.track.id, x: d.x, y: d.y, trail: d.trail, label: d.label}));
  },
  /** [r, g, b, a] of the tracks' overlay at CSS px (x, y) of the map (0 alpha: nothing drawn there). */
  overlayPixel(x, y) {
    const c = state.overlay.canvas, dpr = c.width / c.clientWidth;
    return [...c.getContext('2d').getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data];
  },
  /** Page coordinates (CSS pixels) of a lon/lat on the map, for pointer tests. */
  screenPoint(lon, lat) {
    const p = state.map.project([lon, lat]);
    const r = state.map.getContainer().getBoundingClientRect();
    return {x: r.left + p.x, y: r.top + p.y};
  },
  /** The in-browser RFC 9162 check the receipt uses: (index, size, entryHex, pathHex[], rootHex) => bool. */
  async verifyInclusion(index, size, entryHex, pathHex, rootHex) {
    const bytes = new Uint8Array(entryHex.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
    return verifyInclusion(index, size, await leafHash(bytes), pathHex, rootHex);
  },
  /** RFC 9162 leaf hash (hex) of an entry given as hex. */
  async leafHash(entryHex) {
    return hex(await leafHash(new Uint8Array(entryHex.match(/../g)?.map((h) => parseInt(h, 16)) ?? [])));
  },
  refresh,
  showFiling,
  get map() { return state.map; },
};
window.deconflict = api;

$('#signin').addEventListener('submit', (e) => {
  e.preventDefault();
  begin($('#token').value.trim(), false);
});
$('#signout').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
});
const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) begin(saved, true); else showSignIn('');
