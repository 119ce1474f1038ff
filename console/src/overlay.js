// Live tracks drawn on a 2D canvas laid over the map, in step with it: redrawn when the map
// draws a frame (pan, zoom, rotate) and when the tracks change. A track update therefore
// costs one overlay redraw and no map repaint: drawn as a MapLibre GeoJSON source, every
// update re-tiled the source in the worker and repainted the whole map about three times
// (150 ms each in software rendering with 2,000 tracks). Arrows by heading, an 8-point
// trail, and callsigns (past `labelAllUpTo` tracks, from zoom `labelZoom` up; a callsign that
// would overlap one already drawn is left out, as MapLibre's symbol placement did).

const TILE = 512; // MapLibre's world is 512 px wide at zoom 0
const FONT = '11px "Liberation Sans", "DejaVu Sans", sans-serif';
const HALO = '#0b1117';
const TEXT = '#e6edf3';
// the arrow of the former symbol layer (24 px image at 0.6): tip, right, notch, left
const ARROW = [[0, -6.6], [4.8, 5.4], [0, 2.4], [-4.8, 5.4]];
const MARGIN = 24;
const CELL = 32; // label collision grid

/** Web Mercator of (lon, lat) in [0, 1] (x east, y south), as MapLibre's. */
export function mercator(lon, lat) {
  const s = Math.min(Math.max(Math.sin((lat * Math.PI) / 180), -0.9999999), 0.9999999);
  return [(lon + 180) / 360, 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)];
}

export class TrackOverlay {
  /**
   * @param {import('maplibre-gl').Map} map
   * @param {import('./tracks.js').Tracks} tracks
   */
  constructor(map, tracks, {labelAllUpTo = 500, labelZoom = 7} = {}) {
    this.map = map;
    this.tracks = tracks;
    this.labelAllUpTo = labelAllUpTo;
    this.labelZoom = labelZoom;
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'track-overlay';
    this.canvas.dataset.testid = 'track-overlay';
    map.getCanvasContainer().appendChild(this.canvas);
    this.ctx = this.canvas.getContext('2d');
    this.drawn = []; // [{track, x, y, trail, label}] in view at the last draw
    this.draws = 0;
    this.pending = 0;
    map.on('render', () => this.draw());
    map.on('resize', () => this.draw());
  }

  /** Redraw at the next frame (several updates in one frame: one redraw). */
  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => { this.pending = 0; this.draw(); });
  }

  /** (mx, my) in [0, 1] → CSS px in the map's container; MapLibre's own when pitched. */
  projector() {
    const map = this.map;
    if (map.getPitch() !== 0) {
      return (mx, my) => {
        const lon = mx * 360 - 180;
        const lat = (Math.atan(Math.sinh(Math.PI * (1 - 2 * my))) * 180) / Math.PI;
        const p = map.project([lon, lat]);
        return [p.x, p.y];
      };
    }
    const c = map.getCenter();
    const [cx, cy] = mercator(c.lng, c.lat);
    const ws = TILE * 2 ** map.getZoom();
    const b = (-map.getBearing() * Math.PI) / 180;
    const cos = Math.cos(b), sin = Math.sin(b);
    const el = map.getContainer();
    const hw = el.clientWidth / 2, hh = el.clientHeight / 2;
    return (mx, my) => {
      let dx = (mx - cx) * ws;
      const dy = (my - cy) * ws;
      if (dx > ws / 2) dx -= ws; else if (dx < -ws / 2) dx += ws; // the nearer copy of the world
      return [hw + dx * cos - dy * sin, hh + dx * sin + dy * cos];
    };
  }

  resize(w, h) {
    const dpr = window.devicePixelRatio || 1;
    const W = Math.round(w * dpr), H = Math.round(h * dpr);
    if (this.canvas.width !== W || this.canvas.height !== H) {
      this.canvas.width = W;
      this.canvas.height = H;
      this.canvas.style.width = `${w}px`;
      this.canvas.style.height = `${h}px`;
    }
    return dpr;
  }

  draw() {
    const el = this.map.getContainer();
    const w = el.clientWidth, h = el.clientHeight;
    const dpr = this.resize(w, h);
    const g = this.ctx;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const project = this.projector();
    const bearing = this.map.getBearing();
    const list = this.tracks.list;
    const drawn = [];
    const byColor = new Map();
    for (const t of list) {
      const [x, y] = project(t.mx, t.my);
      if (x < -MARGIN || y < -MARGIN || x > w + MARGIN || y > h + MARGIN) continue;
      const d = {track: t, x, y, trail: [], label: false};
      if (t.trail.length >= 2) d.trail = t.trail.map(([mx, my]) => project(mx, my));
      drawn.push(d);
      if (!byColor.has(t.color)) byColor.set(t.color, []);
      byColor.get(t.color).push(d);
    }
    // trails, one path per colour
    g.lineWidth = 1.5;
    g.lineJoin = 'round';
    g.globalAlpha = 0.7;
    for (const [color, ds] of byColor) {
      g.beginPath();
      for (const d of ds) {
        if (d.trail.length < 2) continue;
        g.moveTo(d.trail[0][0], d.trail[0][1]);
        for (let i = 1; i < d.trail.length; i++) g.lineTo(d.trail[i][0], d.trail[i][1]);
      }
      g.strokeStyle = color;
      g.stroke();
    }
    g.globalAlpha = 1;
    // arrows, one path per colour, pointing along the heading on the (maybe rotated) map
    g.lineWidth = 1;
    g.strokeStyle = HALO;
    for (const [color, ds] of byColor) {
      g.beginPath();
      for (const d of ds) {
        const a = ((d.track.heading_deg - bearing) * Math.PI) / 180;
        const cos = Math.cos(a), sin = Math.sin(a);
        ARROW.forEach(([ax, ay], i) => {
          const px = d.x + ax * cos - ay * sin, py = d.y + ax * sin + ay * cos;
          if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
        });
        g.closePath();
      }
      g.fillStyle = color;
      g.fill();
      g.stroke();
    }
    // callsigns, below each arrow, none over another
    if (list.length <= this.labelAllUpTo || this.map.getZoom() >= this.labelZoom) {
      g.font = FONT;
      g.textAlign = 'center';
      g.textBaseline = 'top';
      g.lineWidth = 2.4;
      g.strokeStyle = HALO;
      g.fillStyle = TEXT;
      const grid = new Map();
      const free = (box) => {
        for (let cx = Math.floor(box[0] / CELL); cx <= Math.floor(box[2] / CELL); cx++) {
          for (let cy = Math.floor(box[1] / CELL); cy <= Math.floor(box[3] / CELL); cy++) {
            for (const o of grid.get(`${cx},${cy}`) ?? []) {
              if (box[0] < o[2] && o[0] < box[2] && box[1] < o[3] && o[1] < box[3]) return false;
            }
          }
        }
        return true;
      };
      const take = (box) => {
        for (let cx = Math.floor(box[0] / CELL); cx <= Math.floor(box[2] / CELL); cx++) {
          for (let cy = Math.floor(box[1] / CELL); cy <= Math.floor(box[3] / CELL); cy++) {
            const k = `${cx},${cy}`;
            if (!grid.has(k)) grid.set(k, []);
            grid.get(k).push(box);
          }
        }
      };
      for (const d of drawn) {
        const text = d.track.callsign;
        const half = text.length * 3.3 + 2;
        const box = [d.x - half, d.y + 12, d.x + half, d.y + 26];
        if (!free(box)) continue;
        take(box);
        g.strokeText(text, d.x, d.y + 13);
        g.fillText(text, d.x, d.y + 13);
        d.label = true;
      }
    }
    this.drawn = drawn;
    this.draws += 1;
  }

  /** The track drawn nearest to `point` (CSS px in the map), within `radius` px. */
  hit(point, radius = 10) {
    let best = null, bestD = radius * radius;
    for (const d of this.drawn) {
      const dd = (d.x - point.x) ** 2 + (d.y - point.y) ** 2;
      if (dd <= bestD) { best = d; bestD = dd; }
    }
    return best;
  }
}
