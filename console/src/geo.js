// Display geometry only: a circle volume drawn as a polygon, centroids for conflict links.
// (Separation itself is measured on the server; nothing here decides a conflict.)

const EARTH_RADIUS_M = 6371008.8;
const RAD = Math.PI / 180;

/** A ring of `n` points `radius_m` around (lon, lat), on the sphere (display only). */
export function circleRing(lon, lat, radius_m, n = 64) {
  const d = radius_m / EARTH_RADIUS_M;
  const p1 = lat * RAD, l1 = lon * RAD;
  const ring = [];
  for (let i = 0; i <= n; i++) {
    const brg = (2 * Math.PI * (i % n)) / n;
    const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(brg));
    const l2 = l1 + Math.atan2(Math.sin(brg) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
    ring.push([l2 / RAD, p2 / RAD]);
  }
  return ring;
}

/** A volume Feature from the API (Polygon, or Point with radius_m) as a Polygon geometry. */
export function volumeGeometry(feature) {
  const g = feature.geometry;
  if (g.type === 'Point') {
    return {type: 'Polygon', coordinates: [circleRing(g.coordinates[0], g.coordinates[1], feature.properties.radius_m)]};
  }
  return g;
}

/** The mean of a polygon's outer ring vertices (without the closing one): a label point. */
export function ringCentre(geometry) {
  const ring = geometry.coordinates[0];
  const pts = ring.length > 1 ? ring.slice(0, -1) : ring;
  let x = 0, y = 0;
  for (const [a, b] of pts) { x += a; y += b; }
  return [x / pts.length, y / pts.length];
}

/** Extend bounds [[w, s], [e, n]] (or null) by a geometry's outer ring. */
export function extend(bounds, geometry) {
  let b = bounds;
  for (const [x, y] of geometry.coordinates[0]) {
    b = b ? [[Math.min(b[0][0], x), Math.min(b[0][1], y)], [Math.max(b[1][0], x), Math.max(b[1][1], y)]]
      : [[x, y], [x, y]];
  }
  return b;
}
