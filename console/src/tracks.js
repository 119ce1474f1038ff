// Live tracks (callsign, heading, a short trail) and predicted tactical conflicts between
// them. Fed through window.deconflict.setTracks / setTacticalConflicts: by tests and the
// bench today, by the tactical API when it lands.

const num = (v) => typeof v === 'number' && Number.isFinite(v);

export class Tracks {
  constructor(colorOf, trailLength = 8) {
    this.colorOf = colorOf;
    this.trailLength = trailLength;
    this.trails = new Map(); // id -> [[lon, lat], ...]
    this.positions = new Map(); // id -> [lon, lat]
    this.points = {type: 'FeatureCollection', features: []};
    this.lines = {type: 'FeatureCollection', features: []};
    this.tactical = {type: 'FeatureCollection', features: []};
    this.tacticalList = [];
    this.tacticalDirty = false; // redraw the tactical links only when they changed
  }

  /** Replace the picture with `list`: [{id, callsign?, party?, lon, lat, heading_deg?,
   * altitude_m?, speed_mps?}]. Returns how many were taken (entries without an id or a
   * finite lon/lat are skipped). */
  set(list) {
    const seen = new Set();
    const points = [], lines = [];
    for (const t of list) {
      if (!t || t.id === undefined || !num(t.lon) || !num(t.lat)) continue;
      const id = String(t.id);
      if (seen.has(id)) continue;
      seen.add(id);
      let trail = this.trails.get(id);
      if (!trail) { trail = []; this.trails.set(id, trail); }
      const last = trail[trail.length - 1];
      if (!last || last[0] !== t.lon || last[1] !== t.lat) {
        trail.push([t.lon, t.lat]);
        if (trail.length > this.trailLength) trail.shift();
      }
      this.positions.set(id, [t.lon, t.lat]);
      const color = this.colorOf(t.party);
      points.push({type: 'Feature', geometry: {type: 'Point', coordinates: [t.lon, t.lat]}, properties: {
        tid: id, callsign: String(t.callsign ?? id), party: t.party ?? null, color,
        heading_deg: num(t.heading_deg) ? t.heading_deg : 0,
        altitude_m: num(t.altitude_m) ? t.altitude_m : null, speed_mps: num(t.speed_mps) ? t.speed_mps : null,
      }});
      if (trail.length >= 2) {
        lines.push({type: 'Feature', geometry: {type: 'LineString', coordinates: trail.slice()}, properties: {tid: id, color}});
      }
    }
    for (const id of [...this.trails.keys()]) {
      if (!seen.has(id)) { this.trails.delete(id); this.positions.delete(id); }
    }
    this.points = {type: 'FeatureCollection', features: points};
    this.lines = {type: 'FeatureCollection', features: lines};
    if (this.tacticalList.length) this.setTactical(this.tacticalList); // links follow the tracks
    return points.length;
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
