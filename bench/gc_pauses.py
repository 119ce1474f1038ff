"""Benchmark: garbage-collector pauses of in-process filings once the caches are full.

The filings of `bench/strategic.py` (same store, same distribution), submitted one at
a time in-process, but many more of them: the warm-up fills the service's caches
(decoded filings, detection arrays), so the timed filings run as a long-lived server
does, each new cache entry evicting an old one. Two ways to run the cyclic collector,
each in a fresh interpreter on a fresh copy of the store, alternated round by round:

- `clock`: `deconflict.cli.tune_runtime` as `serve` runs it, with the collector paced
  by a clock (`deconflict.runtime.GcPacer`);
- `count` (the peer): the same but CPython's own trigger (allocations minus
  deallocations), with the thresholds the service used before, (10000, 20, 100).

Reported per run: latency p50, p99, p99.9 and max of a filing; every collection timed
with `gc.callbacks` (count, longest and total a filing, per generation).

    python bench/gc_pauses.py --n 1000000 --data-dir /tmp/sb/1m
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import strategic as S  # noqa: E402
from _data import OWNERS, pct  # noqa: E402

from deconflict import agreements  # noqa: E402
from deconflict.cli import DB_FILE  # noqa: E402
from deconflict.errors import MissingKey  # noqa: E402
from deconflict.service import Services  # noqa: E402
from deconflict.store import open_store  # noqa: E402

MODES = ("count", "clock")
FORMER_THRESHOLDS = (10_000, 20, 100)


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One run in this interpreter: returns its figures."""
    import deconflict.runtime as runtime
    from deconflict.cli import tune_runtime

    kinds = sorted(agreements.load().kinds)
    base, t0, _ = S.prepare_base(args, kinds)
    specs = S.fresh_specs(args.warmup + args.measure, args.seed + 3, kinds, "g", t0)
    with tempfile.TemporaryDirectory(prefix="gc-pauses-", dir=base.parent) as tmp:
        work = Path(tmp) / DB_FILE
        shutil.copyfile(base, work)
        agreement = S.warn_agreement()
        store = open_store(work)
        services = Services.build(store, agreement)
        with store.read() as r:
            parties = {pid: r.get_party(pid) for pid in OWNERS}
        keyer = S.Keyer(work, agreement)
        tune_runtime()
        if args.child == "count":
            runtime.start_pacer().stop()
            gc.set_threshold(*FORMER_THRESHOLDS)
        pauses: list[tuple[int, float]] = []
        started = [0.0]

        def timed(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            else:
                pauses.append((int(info["generation"]), time.perf_counter() - started[0]))

        times: list[float] = []
        for i, spec in enumerate(specs):
            if i == args.warmup:
                gc.callbacks.append(timed)
            key, _ = keyer.key(spec, t0)
            draft = spec.draft(t0)
            party = parties[spec.owner]
            assert party is not None
            t = time.perf_counter()
            try:
                services.filings.submit(party, draft, key, filing_id=spec.id)
            except MissingKey:
                continue
            if i >= args.warmup:
                times.append(time.perf_counter() - t)
        gc.callbacks.remove(timed)
        keyer.close()
        store.close()
    result: dict[str, Any] = {"mode": args.child, **S.ms_summary(times), "p999_ms": pct(times, 99.9) * 1e3}
    for g in (0, 1, 2):
        mine = [d for gen, d in pauses if gen == g]
        result[f"gen{g}"] = {
            "count": len(mine),
            "max_ms": max(mine, default=0.0) * 1e3,
            "ms_per_filing": sum(mine) * 1e3 / max(1, len(times)),
        }
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="active intents in the store (default 100,000)")
    ap.add_argument("--data-dir", help="keep (and reuse) the filled store here (as bench/strategic.py)")
    ap.add_argument("--warmup", type=int, default=3_000, help="filings that fill the caches, untimed")
    ap.add_argument("--measure", type=int, default=3_000, help="timed filings after the warm-up")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each mode, alternated")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=5_000, help="filings per fill transaction")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    if not args.data_dir:
        sys.exit("give --data-dir: each run copies the filled store from there")
    S.prepare_base(args, sorted(agreements.load().kinds))  # fill once, before the runs
    runs: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for mode in MODES:
            cmd = [sys.executable, __file__, "--child", mode, "--n", str(args.n), "--data-dir", args.data_dir]
            cmd += ["--warmup", str(args.warmup), "--measure", str(args.measure), "--seed", str(args.seed)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            run = json.loads(out.strip().splitlines()[-1])
            run["round"] = rnd + 1
            runs.append(run)
            S.log(
                f"round {rnd + 1} {mode:5}: p50 {run['p50_ms']:.2f} ms, p99 {run['p99_ms']:.2f}, "
                f"p99.9 {run['p999_ms']:.2f}, max {run['max_ms']:.2f}, mean {run['mean_ms']:.3f}; "
                + "; ".join(
                    f"gen{g} {run[f'gen{g}']['count']} x, longest {run[f'gen{g}']['max_ms']:.1f} ms, "
                    f"{run[f'gen{g}']['ms_per_filing']:.3f} ms a filing"
                    for g in (0, 1, 2)
                )
            )
    S.OUT_DIR.mkdir(exist_ok=True)
    dest = S.OUT_DIR / f"gc_pauses-{args.n}.json"
    dest.write_text(json.dumps({"n": args.n, "warmup": args.warmup, "runs": runs}, indent=1))
    S.log(f"wrote {dest}")


if __name__ == "__main__":
    main()
