// Live tracks (callsign, heading, a short trail) and predicted tactical conflicts between
// them. Fed through window.deconflict.setTracks / setTacticalConflicts: by tests and the
// bench today, by the tactical API when it lands. Drawn by overlay.js (the tracks) and the
// map's "tactical" source (the links).
import {mercator} from './overlay.js';

const num = (v) => typeof v === 'number' && Number.isFinite(v);

export class Tracks {
  constructor(colorOf, trailLength = 8) {
    this.colorOf = colorOf;
    this.trailLength = trailLength;
    this.trails = new Map(); // id -> [[mx, my], ...] (Web Mercator in [0, 1])
    this.positions = new Map(); // id -> [lon, lat]
    /** [{id, callsign, party, color, lon, lat, mx, my, heading_deg, altitude_m, speed_mps, trail}] */
    this.list = [];
    this.tactical = {type: 'FeatureCollection', features: []};
    this.tacticalList = [];
    this.tacticalDirty = false; // redraw the tactical links only when they changed
  }

  /** Replace the picture with `list`: [{id, callsign?, party?, lon, lat, heading_deg?,
   * altitude_m?, speed_mps?}]. Returns how many were taken (entries without an id or a
   * finite lon/lat are skipped). */
  set(list) {
    const seen = new Set();
    const out = [];
    for (const t of list) {
      if (!t || t.id === undefined || !num(t.lon) || !num(t.lat)) continue;
      const id = String(t.id);
      if (seen.has(id)) continue;
      seen.add(id);
      let trail = this.trails.get(id);
      if (!trail) { trail = []; this.trails.set(id, trail); }
      const [mx, my] = mercator(t.lon, t.lat);
      const last = trail[trail.length - 1];
      if (!last || last[0] !== mx || last[1] !== my) {
        trail.push([mx, my]);
        if (trail.length > this.trailLength) trail.shift();
      }
      this.positions.set(id, [t.lon, t.lat]);
      out.push({
        id, callsign: String(t.callsign ?? id), party: t.party ?? null, color: this.colorOf(t.party),
        lon: t.lon, lat: t.lat, mx, my, heading_deg: num(t.heading_deg) ? t.heading_deg : 0,
        altitude_m: num(t.altitude_m) ? t.altitude_m : null, speed_mps: num(t.speed_mps) ? t.speed_mps : null,
        trail,
      });
    }
    for (const id of [...this.trails.keys()]) {
      if (!seen.has(id)) { this.trails.delete(id); this.positions.delete(id); }
    }
    this.list = out;
    if (this.tacticalList.length) this.setTactical(this.tacticalList); // links follow the tracks
    return out.length;
  }

  /** Predicted conflicts between tracks: [{a, b, time_to_cpa_s, distance_m?}] (track ids). */
  setTactical(list) {
    this.tacticalDirty = this.tacticalDirty || list.length > 0 || this.tactical.features.length > 0;
    this.tacticalList = list;
    const features = [];
    for (const c of list) {
      const a = this.positions.get(String(c.a)), b = this.positions.get(String(c.b));
      if (!a || !b) continue;
      const t = num(c.time_to_cpa_s) ? `CPA in ${Math.round(c.time_to_cpa_s)} s` : 'CPA';
      const d = num(c.distance_m) ? ` · ${Math.round(c.distance_m)} m` : '';
      features.push({type: 'Feature', geometry: {type: 'LineString', coordinates: [a, b]},
        properties: {a: String(c.a), b: String(c.b), label: t + d}});
    }
    this.tactical = {type: 'FeatureCollection', features};
    return features.length;
  }
}
