"""A private PostgreSQL cluster: `initdb` in a temporary directory, listening on a
loopback port, trust authentication for the `postgres` role. The one place that
starts PostgreSQL for the tests (`tests/pg.py`), the benchmarks (`bench/`) and
anyone trying the PostgreSQL store on one machine (`python -m deconflict.store.pg_cluster`).

The server refuses to run as root, so when we are root every server command runs
as the `postgres` user (Debian's packages create it) through `runuser`.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PgBinariesMissing", "bin_dir", "cluster"]

#: Debian's layout: /usr/lib/postgresql/<major>/bin
DEBIAN_ROOT = Path("/usr/lib/postgresql")


class PgBinariesMissing(RuntimeError):
    """No `initdb`/`pg_ctl` on this machine."""


def bin_dir() -> Path:
    """Where initdb and pg_ctl live: $PG_BIN, else the newest Debian major, else $PATH."""
    env = os.environ.get("PG_BIN")
    if env:
        if not (Path(env) / "initdb").exists():
            raise PgBinariesMissing(f"PG_BIN={env} holds no initdb")
        return Path(env)
    if DEBIAN_ROOT.is_dir():
        majors = sorted(
            (p for p in DEBIAN_ROOT.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if majors:
            return majors[-1] / "bin"
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    raise PgBinariesMissing(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql`"
        " package (apt-get install postgresql), or set PG_BIN to their directory"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(args: Sequence[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)


@contextmanager
def cluster(
    port: int | None = None, settings: Mapping[str, str] | None = None, *, durable: bool = True
) -> Iterator[str]:
    """Start a private cluster; yields a libpq URL of its `postgres` database.

    `settings` are server parameters (``-c name=value``); `durable=False` turns fsync
    and synchronous_commit off (tests: a lost commit on power failure is no concern).
    The cluster and its directory are gone when the block ends."""
    pg_bin = bin_dir()
    port = port or free_port()
    root = Path(tempfile.mkdtemp(prefix="deconflict-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    opts = {"listen_addresses": "127.0.0.1", **(settings or {})}
    if not durable:
        opts |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    ctl = str(pg_bin / "pg_ctl")
    started = False
    try:
        subprocess.run(
            _as_postgres(
                [str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        line = " ".join(f"-c {k}={v}" for k, v in opts.items()) + f" -p {port} -k {root}"
        done = subprocess.run(
            _as_postgres([ctl, "-D", str(data), "-o", line, "-l", str(root / "log"), "-w", "start"]),
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            log = (root / "log").read_text(errors="replace")[-2000:] if (root / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()}\n{log}")
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if started:
            stop = [ctl, "-D", str(data), "-m", "fast", "-w", "stop"]
            subprocess.run(_as_postgres(stop), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Run a throwaway cluster in the foreground until interrupted (Ctrl-C or SIGTERM)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    with cluster() as url:
        print(f"PostgreSQL on {url} (Ctrl-C stops it and deletes its data)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
