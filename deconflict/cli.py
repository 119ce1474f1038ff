"""The `deconflict` command: thin commands over `deconflict.service`."""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deconflict import __version__
from deconflict.errors import AgreementError, ConflictRefused, DeconflictError, InvalidInput, MissingKey
from deconflict.model import ConflictState, Role, State

DEFAULT_DATA_DIR = "data"
DB_FILE = "deconflict.sqlite3"
#: `serve`'s tactical scan cycle, seconds: a surveillance update rate (ADS-B reports about
#: once a second); scanning each batch instead caps ingestion (README, bench/tactical.py)
DEFAULT_SCAN_INTERVAL_S = 1.0


def _database(args: argparse.Namespace) -> str | Path:
    """The database a command works on: --database (or $DECONFLICT_DATABASE), a
    PostgreSQL URL or a SQLite path; by default the SQLite file in --data-dir
    (the option's default is $DECONFLICT_DATABASE)."""
    given = getattr(args, "database", None)
    return given if given else Path(args.data_dir) / DB_FILE


def _store(args: argparse.Namespace) -> Any:
    """The one place a command (or a worker process) opens the store."""
    from deconflict.store import open_store

    return open_store(_database(args))


def _open(args: argparse.Namespace) -> Any:
    from deconflict import agreements
    from deconflict.service import Services

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    agreement = agreements.load(args.agreement)
    return Services.build(_store(args), agreement, data_dir=data_dir)


def _print_json(value: Any) -> None:
    from deconflict.api.wire import plain

    print(json.dumps(plain(value), ensure_ascii=False))


def tune_runtime() -> None:
    """The interpreter as a long-running service wants it. Every process that serves
    calls this (`serve`, its worker processes, `demo`); `bench/strategic.py` does too
    before it times filings in-process, so that it measures the service as it runs.

    - The service keeps large caches of immutable objects: freeze what start-up built,
      and pace the cyclic collector by a clock (`deconflict.runtime`): at 1M filings,
      once the caches are full, CPython's own trigger let the young generations grow
      to hundreds of thousands of objects and stalled a filing for over 100 ms.
    - A thread beside the event loop that gives up the interpreter lock for I/O must
      win it back from the loop's thread: the group commit's writer thread on
      PostgreSQL (at every statement), its commit thread on SQLite (after each durable
      commit, which the loop's callers await). Hand the lock over every 0.5 ms instead
      of every 5 ms, so a write holding the store's lock is not kept waiting (measured
      at 1M filings through HTTP when SQLite writes ran on the writer thread too:
      185-195 against 207-208 filings/s in one process, 224-231 against 246-247 with
      two)."""
    from deconflict.runtime import start_pacer

    gc.collect()
    gc.freeze()
    start_pacer()
    sys.setswitchinterval(0.0005)


def _env_list(name: str, sep: str = ",") -> list[str]:
    return [v for v in os.environ.get(name, "").split(sep) if v.strip()]


def _dss_auth(args: argparse.Namespace) -> Any:
    """How /dss/v1 verifies tokens; None (not served) without --auth-public-key."""
    from deconflict.api.f3548 import AuthConfig, load_keys

    if not args.auth_public_key:
        return None
    managers: dict[str, str] = {}
    for pair in args.dss_manager:
        sub, sep, party = pair.partition("=")
        if not sep or not sub or not party:
            raise InvalidInput.one("--dss-manager", f"must be SUB=PARTY, got {pair!r}")
        managers[sub] = party
    return AuthConfig(
        keys=load_keys(args.auth_public_key),
        audiences=tuple(args.auth_audience),
        issuer=args.auth_issuer or None,
        clock_skew_s=args.auth_clock_skew_s,
        managers=managers,
    )


def _auth_to_env(args: argparse.Namespace) -> None:
    """Hand the auth options to worker processes (`app_factory`) through the environment."""
    os.environ["DECONFLICT_AUTH_PUBLIC_KEY"] = os.pathsep.join(
        str(Path(p).resolve()) for p in args.auth_public_key
    )
    os.environ["DECONFLICT_AUTH_AUDIENCE"] = ",".join(args.auth_audience)
    os.environ["DECONFLICT_AUTH_ISSUER"] = args.auth_issuer or ""
    os.environ["DECONFLICT_AUTH_CLOCK_SKEW_S"] = str(args.auth_clock_skew_s)
    os.environ["DECONFLICT_DSS_MANAGERS"] = ",".join(args.dss_manager)


def _auth_from_env() -> argparse.Namespace:
    return argparse.Namespace(
        auth_public_key=_env_list("DECONFLICT_AUTH_PUBLIC_KEY", os.pathsep),
        auth_audience=_env_list("DECONFLICT_AUTH_AUDIENCE"),
        auth_issuer=os.environ.get("DECONFLICT_AUTH_ISSUER") or None,
        auth_clock_skew_s=float(os.environ.get("DECONFLICT_AUTH_CLOCK_SKEW_S") or 30.0),
        dss_manager=_env_list("DECONFLICT_DSS_MANAGERS"),
    )


def app_factory() -> Any:
    """The app of one worker process (`serve --workers N`), configured by environment."""
    from deconflict.api.app import create_app

    args = argparse.Namespace(
        data_dir=os.environ["DECONFLICT_DATA_DIR"],
        agreement=os.environ.get("DECONFLICT_AGREEMENT") or None,
        database=os.environ.get("DECONFLICT_DATABASE") or None,
    )
    interval = os.environ.get("DECONFLICT_STH_INTERVAL_S")
    services = _open(args)
    scan = os.environ.get("DECONFLICT_TACTICAL_SCAN_INTERVAL_S")
    services.tactical.scan_interval_s = float(scan) if scan else DEFAULT_SCAN_INTERVAL_S
    app = create_app(
        services,
        sth_interval_s=float(interval) if interval else 10.0,
        dss_auth=_dss_auth(_auth_from_env()),
    )
    tune_runtime()
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from deconflict.api.app import create_app
    from deconflict.sim.seed import TOKENS_FILE, seed_example

    dss_auth = _dss_auth(args)  # a bad key or option fails here, before anything starts
    services = _open(args)
    if args.seed_example:
        tokens = seed_example(services, Path(args.data_dir))
        if tokens:
            print(f"seeded the example; API tokens written to {Path(args.data_dir) / TOKENS_FILE}")
        else:
            print("store already holds parties; not seeding")
    from deconflict.store import is_server_url

    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    database = _database(args)
    where = (
        f"store {_redacted(database)}, keys in {args.data_dir}"
        if is_server_url(database)
        else (f"data in {args.data_dir}")
    )
    print(f"deconflict {__version__} on http://{args.host}:{args.port} ({where}{workers})")
    if dss_auth is not None:
        print(
            f"ASTM F3548-21 DSS interface on /dss/v1 ({len(dss_auth.keys)} verification key(s), "
            f"audience {', '.join(dss_auth.audiences)})"
        )
    print(f"console: http://{args.host}:{args.port}/console/ (sign in with a party's API token)")
    if args.workers > 1:
        # each worker opens the same database; the store's write lock serialises them all
        services.store.close()
        os.environ["DECONFLICT_DATA_DIR"] = str(Path(args.data_dir).resolve())
        os.environ["DECONFLICT_DATABASE"] = (
            str(database) if is_server_url(database) else str(Path(database).resolve())
        )
        os.environ["DECONFLICT_AGREEMENT"] = str(Path(args.agreement).resolve()) if args.agreement else ""
        os.environ["DECONFLICT_STH_INTERVAL_S"] = str(args.sth_interval_s)
        os.environ["DECONFLICT_TACTICAL_SCAN_INTERVAL_S"] = str(args.tactical_scan_interval_s)
        _auth_to_env(args)
        uvicorn.run(
            "deconflict.cli:app_factory",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
        return 0
    services.tactical.scan_interval_s = args.tactical_scan_interval_s
    app = create_app(services, sth_interval_s=args.sth_interval_s or None, dss_auth=dss_auth)
    tune_runtime()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    services.store.close()
    return 0


def _step_done(bar: Any, step: Any) -> None:
    bar.set_postfix_str(step.label[:48])
    bar.update()


def cmd_demo(args: argparse.Namespace) -> int:
    """The service on SQLite in a fresh data directory, with the demo scenario played
    against it through the API, round after round until Ctrl-C (`--once`: one round,
    then the service stops); a progress bar per round."""
    import threading
    from functools import partial

    import uvicorn
    from tqdm import tqdm

    from deconflict.api.app import create_app
    from deconflict.clock import ScaledClock
    from deconflict.service import Services
    from deconflict.sim.demo import STEPS, TOKENS_FILE, Scenario, demo_agreement, register_parties
    from deconflict.store import open_store

    data_dir = Path(args.data_dir)
    with tqdm(total=4, desc="starting", unit="step", leave=True) as bar:
        data_dir.mkdir(parents=True, exist_ok=True)
        for old in (*data_dir.glob(f"{DB_FILE}*"), data_dir / TOKENS_FILE):
            old.unlink(missing_ok=True)
        bar.update()
        bar.set_postfix_str("store")
        clock = ScaledClock(args.speed)  # the whole service on the demo's compressed time
        services = Services.build(open_store(data_dir / DB_FILE), demo_agreement(), clock, data_dir=data_dir)
        bar.update()
        bar.set_postfix_str("parties")
        tokens = register_parties(services, data_dir)
        bar.update()
        bar.set_postfix_str("server")
        app = create_app(services, tick_interval_s=max(0.1, min(1.0, 10 / args.speed)))
        server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level))
        tune_runtime()
        url = f"http://{args.host}:{args.port}"
        scenario = Scenario(url, tokens, clock, seed=args.seed)

        def play() -> None:
            while not server.started:
                if scenario.stop.wait(0.05):
                    return
            bar.update()
            bar.close()
            print(
                f"deconflict {__version__} demo on {url} "
                f"(data in {data_dir}, time x{args.speed:g}, seed {args.seed})"
            )
            print(f"console: {url}/console/ ; API tokens of the parties in {data_dir / TOKENS_FILE}")
            rounds = 0
            while not (server.should_exit or scenario.stop.is_set()):
                rounds += 1
                with tqdm(total=len(STEPS), desc=f"round {rounds}", unit="event") as steps:
                    try:
                        scenario.run(partial(_step_done, steps))
                        if args.once:
                            break
                        steps.set_postfix_str("ending the round")
                        scenario.finish()
                        steps.set_postfix_str("round over")
                    except Exception as exc:
                        if server.should_exit or scenario.stop.is_set():  # Ctrl-C
                            return
                        tqdm.write(f"scenario stopped: {exc}; the console stays up (Ctrl-C to stop)")
                        return
            server.should_exit = True  # --once: the single play is over

        player = threading.Thread(target=play, name="demo-scenario", daemon=True)
        player.start()
        try:
            server.run()
        except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully, then re-raises it
            pass
    scenario.stop.set()
    player.join(timeout=10)
    scenario.close()
    services.store.close()
    return 0


def _redacted(url: str | Path) -> str:
    """A database URL without its password, for printing."""
    from urllib.parse import urlsplit

    parts = urlsplit(str(url))
    if parts.password is None:
        return str(url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def cmd_party_add(args: argparse.Namespace) -> int:
    services = _open(args)
    party, token = services.parties.add(args.id, role=Role(args.role), name=args.name, language=args.language)
    print(f"party {party.id} ({party.role.value}) created; its API token, shown once:")
    print(token)
    return 0


def cmd_party_rotate(args: argparse.Namespace) -> int:
    token = _open(args).parties.rotate(args.id)
    print(f"party {args.id}: new API token, shown once (the old one no longer works):")
    print(token)
    return 0


def cmd_party_list(args: argparse.Namespace) -> int:
    from deconflict.api.wire import party_view

    for p in _open(args).parties.all():
        _print_json(party_view(p))
    return 0


def _caller(services: Any, args: argparse.Namespace) -> Any:
    token = args.token or os.environ.get("DECONFLICT_TOKEN")
    return services.parties.authenticate(token)


def cmd_intent_submit(args: argparse.Namespace) -> int:
    from deconflict.api.wire import conflict_view, filing_view, receipt_view
    from deconflict.model import FilingType
    from deconflict.model.geojson import volume_from_feature
    from deconflict.service import Draft

    doc = json.loads(Path(args.file).read_text("utf-8"))
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InvalidInput.one("(file)", "must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise InvalidInput.one("features", "must be a non-empty list of volume Features")
    volumes = []
    kinds = set()
    for i, feature in enumerate(features):
        try:
            volume, extra = volume_from_feature(feature, extra_properties={"kind"})
        except InvalidInput as exc:
            raise exc.prefixed(f"features[{i}]") from None
        volumes.append(volume)
        if "kind" in extra:
            kinds.add(extra["kind"])
    kind = args.kind or (kinds.pop() if len(kinds) == 1 else None)
    if kind is None:
        raise InvalidInput.one("kind", "give --kind, or one `kind` property on the features")
    services = _open(args)
    who = _caller(services, args)
    outcome = services.filings.submit(
        who, Draft(FilingType.INTENT, kind, tuple(volumes), State(args.state)), args.key
    )
    _print_json(
        {
            "filing": filing_view(outcome.filing, who),
            "conflicts": [conflict_view(c) for c in outcome.conflicts],
            "receipt": receipt_view(outcome.receipt),
        }
    )
    return 0


def cmd_conflicts(args: argparse.Namespace) -> int:
    from deconflict.api.wire import conflict_view

    state = None if args.state == "all" else ConflictState(args.state)
    for c in _open(args).filings.conflicts(state=state, party=args.party):
        _print_json(conflict_view(c))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from deconflict import agreements
    from deconflict.detect.offline import check_feature_collection

    agreement = agreements.load(args.agreement).with_buffers(
        args.horizontal_buffer_m, args.vertical_buffer_m, args.time_buffer_s
    )
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput.one("(file)", f"is not valid JSON: {exc}") from None
    for row in check_feature_collection(doc, agreement):
        _print_json(row)
    return 0


def _zones(args: argparse.Namespace) -> tuple[Any, dict[str, Any], bool]:
    """The agreement, its tactical zone per kind with the command's overrides, and same-party."""
    import dataclasses

    from deconflict import agreements

    a = agreements.load(args.agreement)
    over = {"radius_m": args.radius_m, "half_height_m": args.half_height_m, "lookahead_s": args.lookahead_s}
    zones = {
        k: dataclasses.replace(r.protected_zone, **{f: v for f, v in over.items() if v is not None})
        for k, r in a.kinds.items()
    }
    return a, zones, args.all_pairs or a.tactical_same_party


def cmd_detect(args: argparse.Namespace) -> int:
    from deconflict.detect.tactical import detect_plane, to_plane
    from deconflict.detect.trackfile import read_table, tracks_from_table

    _, zones, same_party = _zones(args)
    tracks = tracks_from_table(read_table(args.file), zones.keys(), args.kind)
    for row in detect_plane(to_plane(tracks, zones)[0], same_party=same_party).rows(tracks.track_id):
        _print_json(row)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from tqdm import tqdm

    from deconflict.detect.recording import ReplayStats, replay
    from deconflict.detect.trackfile import read_table
    from deconflict.model.geojson import format_time

    _, zones, same_party = _zones(args)
    table = read_table(args.file, needs_time=True)
    stats = ReplayStats()
    with tqdm(total=table.num_rows, unit=" reports", disable=args.quiet, file=sys.stderr) as bar:
        events = replay(table, zones, args.kind, same_party=same_party, scan_s=args.scan_s,
                        stale_s=args.stale_s, stats=stats, progress=bar.update)  # fmt: skip
        for event in events:
            t = event.pop("time_s")
            when = format_time(datetime.fromtimestamp(t, UTC)) if stats.absolute_time else t
            _print_json({"time": when, **event})
    print(
        f"{stats.reports} reports ({stats.ignored_stale} older than their track's newest, ignored), "
        f"{stats.scans} scans, up to {stats.tracks_max} tracks; {stats.conflicts_opened} conflicts, "
        f"{stats.los_started} losses of separation; {stats.still_open} still open at the end",
        file=sys.stderr,
    )
    return 0


def cmd_ledger_export(args: argparse.Namespace) -> int:
    services = _open(args)
    try:
        with Path(args.file).open("wb") as out:
            head, counts = services.ledger.export(out)
    finally:
        services.store.close()
    print(
        f"exported {counts.entries} entries and {counts.tree_heads} signed tree heads to {args.file}; "
        f"latest head: size {head.head.size}, root {head.head.root.hex()}, key {head.key_id}"
    )
    return 0


def _checkpoint(path: str) -> Any:
    """A saved tree head: {size, root, timestamp_ms}, or a whole signed tree head."""
    from deconflict.ledger.sth import SignedTreeHead, TreeHead

    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput.one("--checkpoint", f"is not valid JSON: {exc}") from None
    try:
        if isinstance(doc, dict) and "signature" in doc:
            return SignedTreeHead.from_json(doc).head
        return TreeHead.from_json(doc)
    except InvalidInput as exc:
        raise exc.prefixed("--checkpoint") from None


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    from deconflict.ledger.errors import LedgerError
    from deconflict.ledger.keys import decode_public_key
    from deconflict.ledger.verify import verify_export

    checkpoint = _checkpoint(args.checkpoint) if args.checkpoint else None
    public_key = None
    if args.public_key:
        try:
            public_key = decode_public_key(args.public_key)
        except LedgerError as exc:
            raise InvalidInput.one("--public-key", str(exc)) from None
    report = verify_export(Path(args.file), checkpoint=checkpoint, public_key=public_key)
    print(report.summary())
    return 0 if report.ok else 1


def _log_entries(args: argparse.Namespace) -> list[tuple[int, Any]]:
    """The decoded log of an export FILE, or of the store in --data-dir."""
    from deconflict.ledger.export import ExportedEntry, read_export
    from deconflict.service.ledger import decoded, log_rows
    from deconflict.store import is_server_url

    if args.file:
        with Path(args.file).open("rb") as lines:
            rows = [(r.index, r.entry) for r in read_export(lines) if isinstance(r, ExportedEntry)]
        return list(decoded(rows))
    db = _database(args)
    if not is_server_url(db) and not Path(db).is_file():
        field = "--database" if args.database else "--data-dir"
        raise InvalidInput.one(field, f"must hold a store; {db} does not exist")
    store = _store(args)
    try:
        return list(decoded(log_rows(store)))
    finally:
        store.close()


def cmd_ledger_stats(args: argparse.Namespace) -> int:
    from deconflict.ledger.stats import format_table, log_stats

    stats = log_stats(_log_entries(args))
    if args.json:
        _print_json(stats.as_dict())
    else:
        print(format_table(stats))
    return 0


def cmd_ledger_replay(args: argparse.Namespace) -> int:
    from deconflict.ledger.replay import state_at
    from deconflict.model.geojson import parse_time

    at = parse_time(args.at, "--at")
    _print_json(state_at(_log_entries(args), at, include_ended=args.include_ended).as_dict())
    return 0


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be a number >= 0")
    return value


def _scan_interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a finite number >= 0") from None
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError("must be a finite number >= 0")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError("must be a finite number > 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deconflict",
        description="Deconfliction between operators who share an airspace but not a chain of command.",
    )
    parser.add_argument("--version", action="version", version=f"deconflict {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    def database(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--database",
            default=os.environ.get("DECONFLICT_DATABASE") or None,
            metavar="URL",
            help="the store: postgresql://user@host/db, or a SQLite file path"
            " (default: $DECONFLICT_DATABASE, else the SQLite file in --data-dir)",
        )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            default=os.environ.get("DECONFLICT_DATA_DIR", DEFAULT_DATA_DIR),
            help="where the SQLite file and keys live (default: ./data or $DECONFLICT_DATA_DIR)",
        )
        database(p)
        p.add_argument("--agreement", default=None, help="agreement TOML file (default: the shipped one)")

    p = sub.add_parser("serve", help="run the service (REST API) on the store (SQLite, or PostgreSQL)")
    common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--seed-example", action="store_true", help="seed parties and filings into an empty store")
    p.add_argument("--log-level", default="info", help="uvicorn log level")
    p.add_argument("--workers", type=int, default=1, help="worker processes sharing the store (default 1)")
    p.add_argument(
        "--sth-interval-s",
        type=_non_negative,
        default=10.0,
        help="sign a tree head this often if the log grew (default 10; 0: only on request)",
    )
    p.add_argument(
        "--tactical-scan-interval-s",
        type=_scan_interval,
        default=os.environ.get("DECONFLICT_TACTICAL_SCAN_INTERVAL_S") or str(DEFAULT_SCAN_INTERVAL_S),
        metavar="S",
        help="scan the live picture every S seconds, apart from ingestion (default "
        f"{DEFAULT_SCAN_INTERVAL_S:g}, or $DECONFLICT_TACTICAL_SCAN_INTERVAL_S; 0: scan each batch of "
        "reports before answering it, which caps ingestion at the scans' pace)",
    )
    env_auth = _auth_from_env()
    p.add_argument(
        "--auth-public-key",
        action="append",
        default=env_auth.auth_public_key,
        metavar="FILE",
        help="serve the ASTM F3548-21 DSS interface on /dss/v1, verifying OAuth2 JWTs with this public "
        "key: PEM (key or certificate), JWK or JWKS file; repeat for more "
        "(default: $DECONFLICT_AUTH_PUBLIC_KEY, paths separated by ':')",
    )
    p.add_argument(
        "--auth-audience",
        action="append",
        default=env_auth.auth_audience,
        metavar="NAME",
        help="an accepted token audience (`aud`), e.g. this server's host name; repeatable, at least one "
        "with --auth-public-key (default: $DECONFLICT_AUTH_AUDIENCE, comma-separated)",
    )
    p.add_argument(
        "--auth-issuer",
        default=env_auth.auth_issuer,
        metavar="NAME",
        help="the one accepted token issuer (`iss`); absent: any (default: $DECONFLICT_AUTH_ISSUER)",
    )
    p.add_argument(
        "--auth-clock-skew-s",
        type=_non_negative,
        default=env_auth.auth_clock_skew_s,
        help="seconds of clock difference allowed on `exp` and `nbf` (default 30 or "
        "$DECONFLICT_AUTH_CLOCK_SKEW_S)",
    )
    p.add_argument(
        "--dss-manager",
        action="append",
        default=env_auth.dss_manager,
        metavar="SUB=PARTY",
        help="a token `sub` that acts as this party (default: the `sub` is the party id); repeatable "
        "(default: $DECONFLICT_DSS_MANAGERS, comma-separated)",
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="run the service with the demo scenario played against it (SQLite)")
    p.add_argument(
        "--data-dir", default="demo-data", help="data directory, wiped first (default ./demo-data)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--speed",
        type=_positive,
        default=10.0,
        help="time compression: simulated seconds per second (default 10)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the tracks' noise and transponder ids (default 0)"
    )
    p.add_argument(
        "--once", action="store_true", help="play the scenario once, then stop (default: round after round)"
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    p.set_defaults(func=cmd_demo)

    party = sub.add_parser("party", help="manage the party registry").add_subparsers(
        dest="party_command", required=True, metavar="SUBCOMMAND", help="add, rotate or list"
    )
    p = party.add_parser("add", help="create a party and print its API token once")
    common(p)
    p.add_argument("id", help="party id, e.g. north")
    p.add_argument("--role", choices=[r.value for r in Role], default="operator", help="default operator")
    p.add_argument("--name", default=None, help="display name (default: the agreement's)")
    p.add_argument("--language", default=None, help="BCP 47 language (default: the agreement's)")
    p.set_defaults(func=cmd_party_add)
    p = party.add_parser("rotate", help="replace a party's API token (recorded in the shared record)")
    common(p)
    p.add_argument("id", help="party id")
    p.set_defaults(func=cmd_party_rotate)
    p = party.add_parser("list", help="list parties, one JSON object a line")
    common(p)
    p.set_defaults(func=cmd_party_list)

    intent = sub.add_parser("intent", help="file notices of activity").add_subparsers(
        dest="intent_command", required=True, metavar="SUBCOMMAND", help="submit"
    )
    p = intent.add_parser("submit", help="file an intent from a GeoJSON FeatureCollection of volumes")
    common(p)
    p.add_argument("file", help="GeoJSON FeatureCollection: each Feature one volume")
    p.add_argument("--kind", default=None, help="activity kind (default: the features' `kind` property)")
    p.add_argument("--state", choices=["accepted", "activated"], default="accepted", help="initial state")
    p.add_argument("--key", action="append", default=[], help="ovn of a conflicting version seen (repeat)")
    p.add_argument("--token", default=None, help="the party's API token (default: $DECONFLICT_TOKEN)")
    p.set_defaults(func=cmd_intent_submit)

    from deconflict.cli_hotline import add_parser as add_hotline_parser

    add_hotline_parser(sub, common)

    p = sub.add_parser("conflicts", help="list conflicts, one JSON object a line")
    common(p)
    p.add_argument("--state", choices=["open", "closed", "all"], default="open", help="default open")
    p.add_argument("--party", default=None, help="only conflicts where this party owns a side")
    p.set_defaults(func=cmd_conflicts)

    ledger = sub.add_parser("ledger", help="the shared record: export, verify, stats, replay").add_subparsers(
        dest="ledger_command", required=True, metavar="SUBCOMMAND", help="export, verify, stats or replay"
    )
    p = ledger.add_parser(
        "export", help="write every log entry and signed tree head to a file (signs a fresh head first)"
    )
    common(p)
    p.add_argument("file", help="where to write the export (NDJSON)")
    p.set_defaults(func=cmd_ledger_export)
    p = ledger.add_parser(
        "verify",
        help="offline: recompute every hash and check every signature of an export; exit 1 on damage",
    )
    p.add_argument("file", help="an export written by `deconflict ledger export`")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="JSON of a tree head you kept (size, root): checks the log today is consistent with it",
    )
    p.add_argument(
        "--public-key", default=None, help="the log's Ed25519 public key (base64) as you pinned it"
    )
    p.set_defaults(func=cmd_ledger_verify)

    def log_source(p: argparse.ArgumentParser) -> None:
        source = p.add_mutually_exclusive_group(required=True)
        source.add_argument("file", nargs="?", help="an export written by `deconflict ledger export`")
        source.add_argument("--data-dir", default=None, help="or read the log of the store in this directory")
        source.add_argument("--database", default=None, metavar="URL", help="or of this database")

    p = ledger.add_parser(
        "stats", help="from the log alone: notice lead times, reciprocity, conflicts per pair of parties"
    )
    log_source(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(func=cmd_ledger_stats)
    p = ledger.add_parser(
        "replay", help="from the log alone: the filings and open conflicts at a past time, as JSON"
    )
    log_source(p)
    p.add_argument("--at", required=True, help="the time, RFC 3339 UTC, e.g. 2030-06-01T12:00:00Z")
    p.add_argument(
        "--include-ended", action="store_true", help="also list filings ended or withdrawn by then"
    )
    p.set_defaults(func=cmd_ledger_replay)

    p = sub.add_parser(
        "check",
        help="offline: every cross-party conflict in a GeoJSON FeatureCollection of filings",
    )
    p.add_argument("file", help="FeatureCollection (or - for standard input)")
    p.add_argument("--agreement", default=None, help="agreement TOML file (default: the shipped one)")
    p.add_argument("--horizontal-buffer-m", type=_non_negative, default=None, help="override every kind's")
    p.add_argument("--vertical-buffer-m", type=_non_negative, default=None, help="override every kind's")
    p.add_argument("--time-buffer-s", type=_non_negative, default=None, help="override every kind's")
    p.set_defaults(func=cmd_check)

    def tactical(p: argparse.ArgumentParser) -> None:
        p.add_argument("--agreement", default=None, help="agreement TOML file (default: the shipped one)")
        p.add_argument("--kind", default="crewed_flight", help="kind of rows without a `kind` column")
        p.add_argument("--radius-m", type=_positive, default=None, help="protected radius for every kind")
        p.add_argument("--half-height-m", type=_positive, default=None, help="half-height for every kind")
        p.add_argument("--lookahead-s", type=_positive, default=None, help="look-ahead for every kind")
        p.add_argument("--all-pairs", action="store_true", help="also pairs of one party's own tracks")

    cols = "track_id, party, lat, lon, alt_m, gs_mps, trk_deg, vs_mps [, kind]"
    p = sub.add_parser("detect", help=f"offline: tactical conflicts in a CSV/Parquet snapshot ({cols})")
    p.add_argument("file", help="CSV or Parquet (.parquet), one row per track")
    tactical(p)
    p.set_defaults(func=cmd_detect)
    p = sub.add_parser("replay", help="offline: conflict and loss-of-separation events of a recording")
    p.add_argument("file", help=f"CSV or Parquet in time order: time, {cols}")
    tactical(p)
    p.add_argument("--scan-s", type=_positive, default=10.0, help="scan every this many seconds (default 10)")
    p.add_argument(
        "--stale-s", type=_positive, default=60.0, help="drop tracks silent this long (default 60)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InvalidInput as exc:
        for e in exc.errors:
            print(f"error: {e.field or '(input)'}: {e.rule}", file=sys.stderr)
        return 2
    except AgreementError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (MissingKey, ConflictRefused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        listed = exc.missing if isinstance(exc, MissingKey) else exc.conflicts
        for m in listed:
            print(
                f"  {m['type']} {m['id']} v{m['version']} of {m['owner']} ({m['kind']}): ovn {m['ovn']}",
                file=sys.stderr,
            )
        return 1
    except DeconflictError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
