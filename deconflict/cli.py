"""The `deconflict` command: thin commands over `deconflict.service`."""

from __future__ import annotations

import argparse
import gc
import json
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


def _open(args: argparse.Namespace) -> Any:
    from deconflict import agreements
    from deconflict.service import Services
    from deconflict.store.sqlite import SqliteStore

    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    agreement = agreements.load(args.agreement)
    return Services.build(SqliteStore(data_dir / DB_FILE), agreement, data_dir=data_dir)


def _print_json(value: Any) -> None:
    from deconflict.api.wire import plain

    print(json.dumps(plain(value), ensure_ascii=False))


def _tune_gc() -> None:
    """A long-running service keeps large caches of immutable objects: freeze what
    start-up built and collect the oldest generation less often, so that full
    collections do not stall filings."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def app_factory() -> Any:
    """The app of one worker process (`serve --workers N`), configured by environment."""
    from deconflict.api.app import create_app

    args = argparse.Namespace(
        data_dir=os.environ["DECONFLICT_DATA_DIR"], agreement=os.environ.get("DECONFLICT_AGREEMENT") or None
    )
    interval = os.environ.get("DECONFLICT_STH_INTERVAL_S")
    app = create_app(_open(args), sth_interval_s=float(interval) if interval else 10.0)
    _tune_gc()
    return app


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from deconflict.api.app import create_app
    from deconflict.sim.seed import TOKENS_FILE, seed_example

    services = _open(args)
    if args.seed_example:
        tokens = seed_example(services, Path(args.data_dir))
        if tokens:
            print(f"seeded the example; API tokens written to {Path(args.data_dir) / TOKENS_FILE}")
        else:
            print("store already holds parties; not seeding")
    workers = f", {args.workers} worker processes" if args.workers > 1 else ""
    print(f"deconflict {__version__} on http://{args.host}:{args.port} (data in {args.data_dir}{workers})")
    if args.workers > 1:
        # each worker opens the same SQLite file; its write lock serialises them all
        services.store.close()
        os.environ["DECONFLICT_DATA_DIR"] = str(Path(args.data_dir).resolve())
        os.environ["DECONFLICT_AGREEMENT"] = str(Path(args.agreement).resolve()) if args.agreement else ""
        os.environ["DECONFLICT_STH_INTERVAL_S"] = str(args.sth_interval_s)
        uvicorn.run(
            "deconflict.cli:app_factory",
            factory=True,
            workers=args.workers,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
        return 0
    app = create_app(services, sth_interval_s=args.sth_interval_s or None)
    _tune_gc()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    services.store.close()
    return 0


def cmd_party_add(args: argparse.Namespace) -> int:
    services = _open(args)
    party, token = services.parties.add(args.id, role=Role(args.role), name=args.name, language=args.language)
    print(f"party {party.id} ({party.role.value}) created; its API token, shown once:")
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
    from deconflict.store.sqlite import SqliteStore

    if args.file:
        with Path(args.file).open("rb") as lines:
            rows = [(r.index, r.entry) for r in read_export(lines) if isinstance(r, ExportedEntry)]
        return decoded(iter(rows))
    db = Path(args.data_dir) / DB_FILE
    if not db.is_file():
        raise InvalidInput.one("--data-dir", f"must hold a store; {db} does not exist")
    store = SqliteStore(db)
    try:
        return decoded(log_rows(store))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deconflict",
        description="Deconfliction between operators who share an airspace but not a chain of command.",
    )
    parser.add_argument("--version", action="version", version=f"deconflict {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", help="what to do")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data-dir",
            default=os.environ.get("DECONFLICT_DATA_DIR", DEFAULT_DATA_DIR),
            help="where the SQLite file and keys live (default: ./data or $DECONFLICT_DATA_DIR)",
        )
        p.add_argument("--agreement", default=None, help="agreement TOML file (default: the shipped one)")

    p = sub.add_parser("serve", help="run the service (REST API) on the SQLite store")
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
    p.set_defaults(func=cmd_serve)

    party = sub.add_parser("party", help="manage the party registry").add_subparsers(
        dest="party_command", required=True, metavar="SUBCOMMAND", help="add or list"
    )
    p = party.add_parser("add", help="create a party and print its API token once")
    common(p)
    p.add_argument("id", help="party id, e.g. north")
    p.add_argument("--role", choices=[r.value for r in Role], default="operator", help="default operator")
    p.add_argument("--name", default=None, help="display name (default: the agreement's)")
    p.add_argument("--language", default=None, help="BCP 47 language (default: the agreement's)")
    p.set_defaults(func=cmd_party_add)
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
