// The map: an offline style (Natural Earth land and borders served by the service itself,
// no tiles, no glyph server: labels are drawn from the browser's own fonts), and the layers
// of filings, reservations, conflicts and tactical links (tracks: overlay.js).
import * as maplibregl from 'maplibre-gl';

import {extend, ringCentre, volumeGeometry} from './geo.js';

export const PALETTE = ['#4aa3ff', '#ff7a45', '#73d13d', '#b37feb', '#ffd666', '#36cfc9', '#ff85c0', '#bfbfbf'];
const CONFLICT = '#ff4d4f';
const FONT = ['Liberation Sans', 'DejaVu Sans', 'sans-serif'];
const EMPTY = {type: 'FeatureCollection', features: []};

function style(base) {
  return {
    version: 8,
    // no "glyphs": MapLibre renders label glyphs locally with the browser's fonts (TinySDF)
    sources: {
      land: {type: 'geojson', data: `${base}basemap/land.geojson`},
      borders: {type: 'geojson', data: `${base}basemap/borders.geojson`},
    },
    layers: [
      {id: 'sea', type: 'background', paint: {'background-color': '#0d2235'}},
      {id: 'land', type: 'fill', source: 'land', paint: {'fill-color': '#1b2a22'}},
      {id: 'coast', type: 'line', source: 'land', paint: {'line-color': '#5b7f93', 'line-width': 1}},
      {id: 'borders', type: 'line', source: 'borders',
        paint: {'line-color': '#8f8f6f', 'line-width': 1, 'line-dasharray': [3, 2]}},
    ],
  };
}

function hatchImage(size = 8) {
  const c = document.createElement('canvas');
  c.width = c.height = size;
  const g = c.getContext('2d');
  g.strokeStyle = 'rgba(231, 76, 60, 0.8)';
  g.lineWidth = 1.5;
  g.beginPath();
  g.moveTo(0, size); g.lineTo(size, 0);
  g.moveTo(-2, 2); g.lineTo(2, -2);
  g.moveTo(size - 2, size + 2); g.lineTo(size + 2, size - 2);
  g.stroke();
  return g.getImageData(0, 0, size, size);
}

const fillOpacity = ['match', ['get', 'state'], 'activated', 0.4, 'nonconforming', 0.4, 'contingent', 0.25, 0.18];

function addLayers(map) {
  map.addImage('hatch', hatchImage());
  // tracks are drawn over the map by overlay.js, not as a source: see there
  for (const id of ['filings', 'reservations', 'conflicts', 'tactical']) {
    map.addSource(id, {type: 'geojson', data: EMPTY});
  }
  map.addLayer({id: 'reservations-fill', type: 'fill', source: 'reservations',
    paint: {'fill-pattern': 'hatch', 'fill-opacity': 0.9}});
  map.addLayer({id: 'reservations-line', type: 'line', source: 'reservations',
    paint: {'line-color': ['get', 'color'], 'line-width': 2}});
  map.addLayer({id: 'filings-fill', type: 'fill', source: 'filings',
    paint: {'fill-color': ['get', 'color'], 'fill-opacity': fillOpacity}});
  map.addLayer({id: 'filings-line', type: 'line', source: 'filings',
    filter: ['!', ['in', ['get', 'state'], ['literal', ['nonconforming', 'contingent']]]],
    paint: {'line-color': ['get', 'color'], 'line-width': 1.5}});
  map.addLayer({id: 'filings-line-off', type: 'line', source: 'filings',
    filter: ['in', ['get', 'state'], ['literal', ['nonconforming', 'contingent']]],
    paint: {'line-color': ['match', ['get', 'state'], 'nonconforming', '#ffa500', ['get', 'color']],
      'line-width': 2.5, 'line-dasharray': [2, 1.5]}});
  for (const src of ['filings', 'reservations']) {
    map.addLayer({id: `${src}-conflicted`, type: 'line', source: src, filter: ['get', 'conflicted'],
      paint: {'line-color': CONFLICT, 'line-width': 3, 'line-opacity': 0.9}});
  }
  map.addLayer({id: 'conflict-links', type: 'line', source: 'conflicts', filter: ['==', ['geometry-type'], 'LineString'],
    paint: {'line-color': CONFLICT, 'line-width': 2, 'line-dasharray': [1, 1]}});
  map.addLayer({id: 'conflict-marks', type: 'circle', source: 'conflicts', filter: ['==', ['geometry-type'], 'Point'],
    paint: {'circle-radius': 7, 'circle-color': CONFLICT, 'circle-stroke-color': '#ffffff', 'circle-stroke-width': 2}});
  map.addLayer({id: 'tactical-links', type: 'line', source: 'tactical',
    paint: {'line-color': '#ff4d4f', 'line-width': 2}});
  map.addLayer({id: 'tactical-labels', type: 'symbol', source: 'tactical',
    layout: {'symbol-placement': 'line-center', 'text-field': ['get', 'label'], 'text-font': FONT, 'text-size': 11},
    paint: {'text-color': '#ffccc7', 'text-halo-color': '#0b1117', 'text-halo-width': 1.5}});
}

export function createMap(container, base) {
  maplibregl.setWorkerUrl(new URL('maplibre-gl-worker.js', document.baseURI).href);
  const map = new maplibregl.Map({
    container, style: style(base), center: [35.9, 34.9], zoom: 6.3, attributionControl: false,
    // labels appear at once: a fade would repaint several frames after every track update
    fadeDuration: 0,
  });
  map.addControl(new maplibregl.NavigationControl({showCompass: true}), 'top-left');
  map.addControl(new maplibregl.ScaleControl({unit: 'metric'}), 'bottom-left');
  map.addControl(new maplibregl.AttributionControl({compact: true,
    customAttribution: 'Base map: Natural Earth (public domain)'}));
  const loaded = new Promise((resolve) => map.on('load', () => { addLayers(map); resolve(); }));
  return {map, loaded};
}

export function popup() {
  return new maplibregl.Popup({closeButton: false, closeOnClick: false, maxWidth: '280px'});
}

/** Features of a list of filings (one per volume), their bounds, and each filing's centre. */
export function filingFeatures(filings, colorOf, conflicted) {
  const features = [];
  const centres = new Map();
  let bounds = null;
  for (const f of filings) {
    const pts = [];
    f.volumes.forEach((v, i) => {
      const geometry = volumeGeometry(v);
      bounds = extend(bounds, geometry);
      pts.push(ringCentre(geometry));
      const p = v.properties;
      features.push({type: 'Feature', geometry, properties: {
        fid: f.id, vid: `${f.id}#${i}`, type: f.type, owner: f.owner, kind: f.kind, state: f.state,
        version: f.version, ovn: f.ovn, lower: p.altitude_lower_m, upper: p.altitude_upper_m,
        start: p.time_start, end: p.time_end, color: colorOf(f.owner), conflicted: conflicted.has(f.id),
      }});
    });
    const c = pts.reduce((a, b) => [a[0] + b[0] / pts.length, a[1] + b[1] / pts.length], [0, 0]);
    centres.set(f.id, c);
  }
  return {features, bounds, centres};
}

/** A marker at the midpoint of the two sides and a link between them, per conflict. */
export function conflictFeatures(conflicts, centres) {
  const features = [];
  for (const c of conflicts) {
    const a = centres.get(c.a.id), b = centres.get(c.b.id);
    const ends = [a, b].filter(Boolean);
    if (!ends.length) continue;
    const mid = ends.length === 2 ? [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] : ends[0];
    const props = {cid: c.id, a: `${c.a.owner} ${c.a.kind} v${c.a.version}`, b: `${c.b.owner} ${c.b.kind} v${c.b.version}`,
      start: c.time_start, end: c.time_end, h: c.horizontal_separation_m, v: c.vertical_separation_m,
      t: c.time_separation_s, hb: c.separation?.horizontal_m, vb: c.separation?.vertical_m, tb: c.separation?.time_s};
    features.push({type: 'Feature', geometry: {type: 'Point', coordinates: mid}, properties: props});
    if (ends.length === 2) {
      features.push({type: 'Feature', geometry: {type: 'LineString', coordinates: [a, b]}, properties: props});
    }
  }
  return features;
}

/** Distinct values of `key` among the features of `layers` drawn on screen now. */
export function renderedIds(map, layers, key) {
  const ids = new Set();
  for (const f of map.queryRenderedFeatures({layers})) ids.add(f.properties[key]);
  return ids;
}

/** Distinct values of `key` among the features MapLibre holds for `source`. */
export function sourceIds(map, source, key, filter) {
  const ids = new Set();
  for (const f of map.querySourceFeatures(source, filter ? {filter} : undefined)) ids.add(f.properties[key]);
  return ids;
}
