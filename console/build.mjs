// Rebuilds the console's committed bundle in ../deconflict/web/ (run `npm ci && npm run build`).
// Inputs: src/ (the console), maplibre-gl (map library, its CSS and its worker),
// world-atlas (Natural Earth 1:50m land and countries as TopoJSON), topojson-client.
// Nothing here is fetched at run time: the service serves these files as they are.
import {build} from 'esbuild';
import {copyFileSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {feature, mesh} from 'topojson-client';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'deconflict', 'web');
const nm = join(here, 'node_modules');
mkdirSync(join(out, 'basemap'), {recursive: true});

// 1. The map library's worker, next to the bundle (MapLibre starts it as a module worker).
copyFileSync(join(nm, 'maplibre-gl', 'dist', 'maplibre-gl-worker.mjs'), join(out, 'maplibre-gl-worker.js'));

// 2. The console: one ES module and one stylesheet (MapLibre's CSS and ours).
await build({
  entryPoints: [join(here, 'src', 'console.js')],
  bundle: true,
  format: 'esm',
  minify: true,
  target: ['chrome120', 'firefox120', 'safari17'],
  legalComments: 'eof',
  outfile: join(out, 'console.js'),
  logLevel: 'warning',
});
await build({
  entryPoints: [join(here, 'src', 'console.css')],
  bundle: true,
  minify: true,
  outfile: join(out, 'console.css'),
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));

// 3. The base map: Natural Earth 1:50m land (coastlines are its outline) and the borders
// between countries, as GeoJSON with coordinates rounded to 1e-3 degrees (~100 m, finer
// than the 1:50m data itself).
const round = (value) => {
  if (typeof value === 'number') return Math.round(value * 1000) / 1000;
  if (Array.isArray(value)) return value.map(round);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'coordinates' ? round(v) : v]));
  }
  return value;
};
const read = (name) => JSON.parse(readFileSync(join(nm, 'world-atlas', name), 'utf8'));
const land = read('land-50m.json');
const countries = read('countries-50m.json');
const landGeo = feature(land, land.objects.land);
const borders = mesh(countries, countries.objects.countries, (a, b) => a !== b);
const strip = (geo) => ({type: 'FeatureCollection', features: (geo.features ?? [geo]).map(
  (f) => ({type: 'Feature', properties: {}, geometry: round(f.geometry ?? f)}))});
writeFileSync(join(out, 'basemap', 'land.geojson'), JSON.stringify(strip(landGeo)));
writeFileSync(join(out, 'basemap', 'borders.geojson'), JSON.stringify(strip(borders)));
writeFileSync(join(out, 'basemap', 'SOURCE.txt'),
  'Natural Earth 1:50m land and admin-0 boundaries (public domain), from the npm package\n' +
  `world-atlas ${JSON.parse(readFileSync(join(nm, 'world-atlas', 'package.json'), 'utf8')).version}, ` +
  'converted to GeoJSON by console/build.mjs with topojson-client.\n');
console.log(`console bundle written to ${out}`);
