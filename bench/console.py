"""Benchmark: the console's frame rate in headless Chromium with 2,000 live tracks.

The real service (``deconflict serve --seed-example`` in a subprocess, SQLite) and the
real console page, signed in as the observer ``shield``, in Debian's Chromium driven by
Playwright (software rendering: ``--disable-gpu``, WebGL on SwiftShader; no GPU here).
Inside the page, ``--tracks`` tracks spread over the eastern Mediterranean move on
straight legs; every second the whole picture is sent as JSON text, parsed, and handed
to ``window.deconflict.setTracks`` (the entry point the tactical feed will use), which
redraws positions, headings, 8-point trails and callsigns (in the view the console
opens on, fitted to the filings, about zoom 7.3, where callsigns are drawn). The polling
of the API (filings, reservations, conflicts every second) runs as usual.

Frames are counted with requestAnimationFrame over ``--seconds`` (after a warm-up):
fps = frames / elapsed, with the p50/p95/max time between frames and the number of map
repaints. Peers in the same run, same page and viewport: the same console with no
tracks (the ratio is what 2,000 tracks cost), and both again with the map forced to
repaint every frame (``map.repaint = true``: the worst case, every frame a full redraw).

    .venv/bin/python bench/console.py                   # 2,000 tracks, 12 s per mode
    .venv/bin/python bench/console.py --tracks 5000 --seconds 20
    .venv/bin/python bench/console.py --peer b6b2c38    # and the bundle of that commit

``--peer REV`` adds the same two tracks modes with the console bundle (``deconflict/web/
console.js`` and ``console.css``) of git revision REV served in place of this one (the
browser's requests for them are answered from ``git show``), in the same run: before/after.

Prints a table, writes JSON to bench/out/console-<tracks>.json and a screenshot of the
console with the tracks to bench/out/console-<tracks>.png.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "web"))
from chromium import launch  # noqa: E402  (the tests' launcher: one set of Chromium flags)

OUT = ROOT / "bench" / "out"

#: Runs in the page: start feeding `n` tracks every second (deterministic PRNG).
FEED = """
([n]) => {
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const parties = ['north', 'south', 'drones'];
  const tracks = [];
  for (let i = 0; i < n; i++) {
    tracks.push({id: 't' + i, callsign: parties[i % 3].slice(0, 3).toUpperCase() + String(i).padStart(4, '0'),
      party: parties[i % 3], lon: 33.5 + rnd() * 4.5, lat: 32.8 + rnd() * 4.2,
      heading_deg: rnd() * 360, speed_mps: 40 + rnd() * 200, altitude_m: 500 + rnd() * 9000});
  }
  const step = () => {
    for (const t of tracks) {
      const d = t.speed_mps / 111320;  // one second of travel, degrees (display only)
      const h = t.heading_deg * Math.PI / 180;
      t.lat += d * Math.cos(h);
      t.lon += d * Math.sin(h) / Math.cos(t.lat * Math.PI / 180);
      if (rnd() < 0.02) t.heading_deg = (t.heading_deg + rnd() * 60 - 30 + 360) % 360;
    }
    const payload = JSON.stringify(tracks);  // what a feed would receive
    window.__updates = (window.__updates || 0) + 1;
    return window.deconflict.setTracks(JSON.parse(payload));
  };
  step();
  window.__feed = setInterval(step, 1000);
  return tracks.length;
}
"""

#: Runs in the page: count frames for `seconds`, with or without forced repaints.
MEASURE = """
async ([seconds, repaint]) => {
  const map = window.deconflict.map;
  let renders = 0;
  const onRender = () => { renders++; };
  map.on('render', onRender);
  map.repaint = repaint;
  const updates0 = window.__updates || 0;
  const deltas = [];
  const t0 = performance.now();
  let last = t0;
  await new Promise((resolve) => {
    const frame = (now) => {
      deltas.push(now - last);
      last = now;
      if (now - t0 < seconds * 1000) requestAnimationFrame(frame); else resolve();
    };
    requestAnimationFrame(frame);
  });
  const elapsed = (last - t0) / 1000;
  map.repaint = false;
  map.off('render', onRender);
  deltas.sort((a, b) => a - b);
  const q = (p) => deltas[Math.min(deltas.length - 1, Math.floor(p * deltas.length))];
  return {frames: deltas.length, seconds: elapsed, fps: deltas.length / elapsed, p50_ms: q(0.5),
    p95_ms: q(0.95), max_ms: deltas[deltas.length - 1], map_renders: renders,
    renders_per_s: renders / elapsed, track_updates: (window.__updates || 0) - updates0};
}
"""


def serve(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "deconflict",
            "serve",
            "--seed-example",
            "--data-dir",
            str(data_dir),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the service did not start")


def open_console(page: Any, url: str, token: str, tracks: int, warmup: float) -> None:
    page.goto(url + "/")
    page.fill("#token", token)
    page.click("#signin button[type=submit]")
    page.wait_for_function("() => window.deconflict.counts().refreshes > 0", timeout=60_000)
    if tracks:
        page.evaluate(FEED, [tracks])
        page.wait_for_function(f"() => window.deconflict.counts().tracks === {tracks}", timeout=60_000)
    page.evaluate("() => window.deconflict.idle()")
    time.sleep(warmup)


def _answer(body: bytes, kind: str) -> Any:
    def answer(route: Any) -> None:
        route.fulfill(status=200, body=body, content_type=kind)

    return answer


def serve_bundle_of(page: Any, url: str, rev: str) -> None:
    """Answer the page's requests for the console bundle with git revision `rev`'s."""
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css")):
        body = subprocess.run(
            ["git", "show", f"{rev}:deconflict/web/{name}"], cwd=ROOT, check=True, capture_output=True
        ).stdout

        page.route(f"{url}/console/{name}", _answer(body, kind))


def measure(page: Any, seconds: float, repaint: bool) -> dict[str, Any]:
    return dict(page.evaluate(MEASURE, [seconds, repaint]))


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tracks", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=12.0, help="measurement per mode (>= 10)")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--peer", metavar="REV", help="also measure the console bundle of this git revision")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    n = args.tracks
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = serve(Path(tmp) / "data")
        try:
            token = json.loads((Path(tmp) / "data" / "example-tokens.json").read_text())["shield"]
            with sync_playwright() as p:
                context = launch(p, Path(tmp) / "profile")
                page = context.new_page()
                webgl = page.evaluate(
                    "() => { const g = document.createElement('canvas').getContext('webgl2'); "
                    "const i = g.getExtension('WEBGL_debug_renderer_info'); "
                    "return i ? g.getParameter(i.UNMASKED_RENDERER_WEBGL) : g.getParameter(g.RENDERER); }"
                )
                load_before = os.getloadavg()[0]
                open_console(page, url, token, 0, args.warmup)
                rows.append(("no tracks (peer)", measure(page, args.seconds, False)))
                rows.append(("no tracks, repaint every frame", measure(page, args.seconds, True)))
                page.close()
                page = context.new_page()
                open_console(page, url, token, n, args.warmup)
                rows.append((f"{n} tracks, 1 update/s", measure(page, args.seconds, False)))
                shot = OUT / f"console-{n}.png"
                page.screenshot(path=str(shot))
                rendered = len(page.evaluate("() => window.deconflict.rendered().tracks"))
                rows.append((f"{n} tracks, repaint every frame", measure(page, args.seconds, True)))
                if args.peer:
                    page.close()
                    page = context.new_page()
                    serve_bundle_of(page, url, args.peer)
                    open_console(page, url, token, n, args.warmup)
                    rows.append((f"{n} tracks, 1 update/s, {args.peer}", measure(page, args.seconds, False)))
                    label = f"{n} tracks, repaint every frame, {args.peer}"
                    rows.append((label, measure(page, args.seconds, True)))
                load_after = os.getloadavg()[0]
                context.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print(f"Chromium headless, software WebGL ({webgl}), viewport 1280x800, {os.cpu_count()} cores")
    print(f"load average (1 min) before / after: {load_before:.1f} / {load_after:.1f}")
    width = max(36, *(len(label) + 2 for label, _ in rows))
    print(
        f"{'mode':<{width}}{'fps':>7}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}{'repaints/s':>11}{'updates':>8}"
    )
    for label, r in rows:
        print(
            f"{label:<{width}}{r['fps']:7.1f}{r['p50_ms']:8.1f}{r['p95_ms']:8.1f}{r['max_ms']:8.1f}"
            f"{r['renders_per_s']:11.1f}{r['track_updates']:8d}"
        )
    by = dict(rows)
    ratio = by[f"{n} tracks, 1 update/s"]["fps"] / by["no tracks (peer)"]["fps"]
    ratio_r = by[f"{n} tracks, repaint every frame"]["fps"] / by["no tracks, repaint every frame"]["fps"]
    print(f"fps with {n} tracks / without: {ratio:.2f} (1 update/s), {ratio_r:.2f} (repaint every frame)")
    if args.peer:
        gain = by[f"{n} tracks, 1 update/s"]["fps"] / by[f"{n} tracks, 1 update/s, {args.peer}"]["fps"]
        print(f"fps with {n} tracks, this bundle / {args.peer}'s: {gain:.2f}")
    print(f"tracks drawn on screen at the end: {rendered}; screenshot: {shot.relative_to(ROOT)}")
    out = OUT / f"console-{n}.json"
    report = {"webgl": webgl, "load": [load_before, load_after], "rows": dict(rows), "rendered": rendered}
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
