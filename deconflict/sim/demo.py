"""The demo scenario: about 30 simulated minutes on the coast around an air base near
Latakia (35.40°N 35.95°E) that exercise the whole mechanism through the real HTTP API.

Two air forces (`north`, `south`), a drone operator (`drones`) and an observer
(`shield`), the parties of the shipped agreement, each reading the hotline in its own
language. Scripted, at simulated times (seconds from the start):

- 0: `north` reserves airspace for an air-defence activity over the sea; `drones` files a
  coastal survey; `north` files a patrol over it: the patrol outranks the survey, its key
  shows it has seen it, so it is accepted and the strategic conflict opened;
- 60: `south` files a transit with less than the agreed notice: accepted, flagged late;
- 300: `drones` updates the survey, moving it south: the conflict is closed;
- from 300/410/710: the three aircraft fly and report their tracks (POST /v1/tracks);
- 900: `south` sends `north` a CHANNEL_CHECK; `north`'s client acknowledges delivery but
  nobody answers: the reply deadline passes and the message escalates;
- 1000-1220: VIPER 1 (`north`) climbs out of its patrol volume and closes on FALCON 7
  (`south`): the patrol goes nonconforming and a tactical conflict is alerted to both;
- 1080: `shield` asks `north` whether VIPER 1 is theirs (IDENTITY_QUERY); 1110: MINE;
- 1140: `north` answers the channel check, late (ROGER);
- 1200-1500: `drones` loses its link: no heartbeats, no tracks: DOWN, then UP again.

Time: the demo runs the whole service on a `ScaledClock` (`deconflict.clock`), `speed`
times as fast as the real one, and plays the scenario on that clock. So every figure is
true in simulated time: the agreement's notice, buffers, deadlines and heartbeats as
`demo_agreement` gives them, the tracks' ground speeds and climb rates, their times, and
the tactical look-ahead and CPA figures; only a real second holds `speed` simulated ones.
`seed` varies track noise and the ids of the aircraft's transponders only: the same seed
gives the same run.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx

from deconflict.clock import Clock
from deconflict.geometry.projection import LocalProjection
from deconflict.model import Agreement, Role
from deconflict.service import Services

__all__ = [
    "BASE",
    "DURATION_S",
    "STEP_S",
    "TOKENS_FILE",
    "Scenario",
    "demo_agreement",
    "register_parties",
]

#: the air base near Latakia (lon, lat)
BASE = (35.95, 35.40)
DURATION_S = 1800
#: simulated seconds between two track reports
STEP_S = 10
HEARTBEAT_S = 30
TOKENS_FILE = "demo-tokens.json"
DROPOUT = (1200, 1500)
PLANE = LocalProjection.at(*BASE)

#: the demo's rules (simulated time, as everything on the service's clock)
_KIND_NOTICE_S = {"crewed_flight": 600, "uas_flight": 300, "air_defence_activity": 600}
_DEADLINES = {
    "CHANNEL_CHECK": {"delivery_s": 30, "reply_s": 120},
    "IDENTITY_QUERY": {"delivery_s": 30, "reply_s": 120},
    "CONFLICT_WARNING": {"delivery_s": 30, "reply_s": 240},
}


def demo_agreement() -> Agreement:
    """The shipped agreement with the demo's shorter notice, heartbeats and deadlines (so
    that 30 minutes show them all). Distances, buffers and priorities are the shipped ones."""
    text = resources.files("deconflict.agreements").joinpath("default.toml").read_text(encoding="utf-8")
    doc = tomllib.loads(text)
    doc["agreement"]["name"] = f"{doc['agreement']['name']} (demo)"
    for name, kind in doc["kinds"].items():
        kind["min_notice_s"] = _KIND_NOTICE_S.get(name, kind["min_notice_s"])
    hot = doc.setdefault("hotline", {})
    hot["heartbeat_period_s"] = HEARTBEAT_S
    hot["down_after_s"] = 3 * HEARTBEAT_S
    hot["deadlines"] = {**hot.get("deadlines", {}), **_DEADLINES}
    return Agreement.from_mapping(doc)


def register_parties(services: Services, data_dir: Path) -> dict[str, str]:
    """An admin and the agreement's parties (`shield` as observer) in an empty store;
    their tokens, also written (mode 0600) to `data_dir`/demo-tokens.json."""
    tokens: dict[str, str] = {}
    _, tokens["admin"] = services.parties.add("admin", role=Role.ADMIN, name="Service administrator")
    for p in services.agreement.parties:
        role = Role.OBSERVER if p.id == "shield" else Role.OPERATOR
        _, tokens[p.id] = services.parties.add(p.id, role=role, name=p.name, language=p.language)
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / TOKENS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2)
    return tokens


# -- geometry of the scenario (local plane around the base: x east, y north, metres)


def _lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = PLANE.inverse([x], [y])
    return round(float(lon[0]), 6), round(float(lat[0]), 6)


def _polygon(corners: list[tuple[float, float]]) -> dict[str, Any]:
    ring = [list(_lonlat(x, y)) for x, y in corners]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return _polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def _circle(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": list(_lonlat(x, y))}


#: the filings' shapes (km on the local plane)
RESERVATION = (-45_000.0, 35_000.0, 10_000.0)  # circle: x, y, radius, over the sea
SURVEY_V1 = (-10_000.0, -10_000.0, 3_000.0)  # under the patrol
SURVEY_V2 = (-10_000.0, -40_000.0, 3_000.0)  # moved south, clear of it
PATROL = (-25_000.0, -20_000.0, 5_000.0, 5_000.0)  # box, 300-3600 m
PATROL_CEILING_M = 3600.0
TRANSIT = (-10_000.0, 16_000.0, 40_000.0, 24_000.0)  # box, 4000-9000 m


def _ellipse(cx: float, cy: float, rx: float, ry: float, period_s: float, t: float) -> tuple[float, float]:
    a = 2 * math.pi * t / period_s
    return cx + rx * math.cos(a), cy + ry * math.sin(a)


def falcon(t: float) -> tuple[float, float, float]:
    """FALCON 7 (south): an oval in the transit corridor at 4500 m."""
    x, y = _ellipse(15_000, 20_000, 20_000, 3_000, 600, t)
    return x, y, 4500.0


def _viper_orbit(t: float) -> tuple[float, float, float]:
    x, y = _ellipse(-10_000, -7_500, 10_000, 8_000, 480, t)
    return x, y, 3000.0


def viper(t: float) -> tuple[float, float, float]:
    """VIPER 1 (north): orbits in its patrol volume; from 1000 to 1220 it leaves it,
    climbs and closes on FALCON 7 (4 km south of it, 100 m lower), then comes back."""
    orbit = _viper_orbit(t)
    fx, fy, falt = falcon(t)
    shadow = (fx, fy - 4_000, falt - 100)
    if t < 1000 or t >= 1220:
        return orbit
    a = min(1.0, (t - 1000) / 60) if t < 1160 else max(0.0, 1 - (t - 1160) / 60)
    x, y, z = (o + a * (s - o) for o, s in zip(orbit, shadow, strict=True))
    return x, y, z


def survey(t: float) -> tuple[float, float, float]:
    """SURVEY 1 (drones): circles over the coast at 300 m, in its moved survey area."""
    x, y = _ellipse(SURVEY_V2[0], SURVEY_V2[1], 2_000, 2_000, 500, t)
    return x, y, 300.0


@dataclass(frozen=True)
class Aircraft:
    party: str
    track: str
    callsign: str
    kind: str
    filing: str  # the key in Scenario.ids of the intent it flies
    start_s: float
    path: Callable[[float], tuple[float, float, float]]


AIRCRAFT = (
    Aircraft("south", "FALCON7", "FALCON 7", "crewed_flight", "transit", 310, falcon),
    Aircraft("drones", "SURVEY1", "SURVEY 1", "uas_flight", "survey", 410, survey),
    Aircraft("north", "VIPER1", "VIPER 1", "crewed_flight", "patrol", 710, viper),
)


#: the filings a round makes: name in Scenario.ids -> (owner, API collection)
_FILINGS = {
    "reservation": ("north", "constraints"),
    "survey": ("drones", "intents"),
    "patrol": ("north", "intents"),
    "transit": ("south", "intents"),
}


@dataclass(frozen=True)
class Step:
    at_s: float
    label: str


#: the scripted events, in order (what the progress bar names)
STEPS = (
    Step(0, "north reserves airspace for an air-defence activity"),
    Step(0, "drones files a coastal survey"),
    Step(0, "north files a patrol over it: strategic conflict"),
    Step(60, "south files a transit with late notice"),
    Step(300, "drones moves its survey: conflict closed"),
    Step(900, "south sends north a channel check (no answer)"),
    Step(1000, "VIPER 1 climbs out of its volume towards FALCON 7"),
    Step(1080, "shield asks north: is VIPER 1 yours?"),
    Step(1110, "north answers MINE"),
    Step(1140, "north answers the channel check, late"),
    Step(DROPOUT[0], "drones loses its link (DOWN)"),
    Step(DROPOUT[1], "drones is back (UP)"),
    Step(DURATION_S, "scenario complete"),
)


@dataclass
class Scenario:
    """The scripted run against a service at `url`, as the parties of `tokens`, on the
    service's `clock` (a `ScaledClock` at the demo's speed: the same object, or one
    started at the same instant with the same rate)."""

    url: str
    tokens: dict[str, str]
    clock: Clock
    seed: int = 0
    #: what the scenario made: filing ids and message ids by name
    ids: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    #: tactical alerts the answers to its track reports opened: (step, reporting track, alert)
    alerts_opened: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._clients = {
            p: httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {t}"}, timeout=30)
            for p, t in self.tokens.items()
        }
        self._rng = random.Random(self.seed)
        self._icao = {a.track: f"{self._rng.randrange(0x100000, 0xFFFFFF):06x}" for a in AIRCRAFT}
        self._seen: dict[str, int] = {}
        #: the filings' windows end 5 minutes after the round (`finish` ends them at its end)
        self._end_s = DURATION_S + 300
        self._airborne: set[str] = set()
        self._t0 = self.clock.now()

    # -- time

    @property
    def speed(self) -> float:
        """Simulated seconds per real second (the clock's rate)."""
        return self.clock.rate

    def when(self, sim_s: float) -> datetime:
        """The instant, on the service's clock, of `sim_s` seconds into the scenario."""
        return self._t0 + timedelta(seconds=sim_s)

    def _iso(self, sim_s: float) -> str:
        return self.when(sim_s).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def _sleep_until(self, sim_s: float) -> None:
        delay = (self.when(sim_s) - self.clock.now()).total_seconds() / self.speed
        if delay > 0:
            self.stop.wait(delay)

    # -- the API

    def _call(self, party: str, method: str, path: str, **kw: Any) -> Any:
        r = self._clients[party].request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{party} {method} {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    def _volume(self, geometry: dict[str, Any], lower: float, upper: float, start: float, end: float,
                radius: float | None = None) -> dict[str, Any]:  # fmt: skip
        props: dict[str, Any] = {
            "altitude_lower_m": lower,
            "altitude_upper_m": upper,
            "time_start": self._iso(start),
            "time_end": self._iso(end),
        }
        if radius is not None:
            props["radius_m"] = radius
        return {"type": "Feature", "geometry": geometry, "properties": props}

    def _file(self, party: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """File as `party`; when the service answers that the key misses conflicting
        versions (the party has now seen them), file again with them in the key."""
        r = self._clients[party].post(path, json=body)
        if r.status_code == 409 and r.json().get("missing"):
            r = self._clients[party].post(path, json={**body, "key": [m["ovn"] for m in r.json()["missing"]]})
        if r.status_code >= 400:
            raise RuntimeError(f"{party} POST {path}: {r.status_code} {r.text[:300]}")
        return dict(r.json()["filing"])

    def _heartbeats(self, t: float) -> None:
        for party in self.tokens:
            if party == "admin" or (party == "drones" and DROPOUT[0] <= t < DROPOUT[1]):
                continue
            self._call(party, "POST", "/v1/hotline/heartbeat")
            self._acknowledge(party)

    def _acknowledge(self, party: str) -> None:
        """The party's client has what its stream brought: each message marked delivered."""
        page = self._call(party, "GET", "/v1/hotline/events", params={"after": self._seen.get(party, 0)})
        self._seen[party] = page["last"]
        for e in page["events"]:
            m = e["data"].get("message") if e["type"] == "message" else None
            if m and m.get("sender") != party:
                self._clients[party].post(f"/v1/hotline/messages/{m['id']}/delivered")

    def _tracks(self, t: float) -> None:
        for a in AIRCRAFT:
            if t < a.start_s or (a.party == "drones" and DROPOUT[0] <= t < DROPOUT[1]):
                continue
            x, y, alt = a.path(t)
            x2, y2, alt2 = a.path(t + 1)
            noise = 5.0 if a.kind == "uas_flight" else 20.0
            lon, lat = _lonlat(x + self._rng.gauss(0, noise), y + self._rng.gauss(0, noise))
            report = {
                "track": a.track,
                "time": self._iso(t),  # where it was at t, as its velocity says (simulated m/s)
                "lat": lat,
                "lon": lon,
                "alt_m": round(alt + self._rng.gauss(0, 2.0), 1),
                "gs_mps": round(math.hypot(x2 - x, y2 - y), 1),
                "trk_deg": round(math.degrees(math.atan2(x2 - x, y2 - y)) % 360, 1),
                "vs_mps": round(alt2 - alt, 1),
                "callsign": a.callsign.replace(" ", ""),
                "icao24": self._icao[a.track],
                "kind": a.kind,
            }
            if a.filing in self.ids:
                report["intent"] = self.ids[a.filing]
                if a.track not in self._airborne:  # take-off: the owner activates its intent
                    self._airborne.add(a.track)
                    body = {"ovn": self.ids[f"{a.filing}_ovn"], "state": "activated"}
                    f = self._call(a.party, "POST", f"/v1/intents/{self.ids[a.filing]}/state", json=body)
                    self.ids[f"{a.filing}_ovn"] = f["filing"]["ovn"]
            done = self._call(a.party, "POST", "/v1/tracks", json={"reports": [report]})
            for change in done.get("alerts", []):  # the service scans each batch before answering
                if change["change"] == "opened":
                    self.alerts_opened.append((t, a.track, change["alert"]))

    # -- the script

    def _event(self, step: Step) -> None:
        t, label = step.at_s, step.label
        if label.startswith("north reserves"):
            x, y, r = RESERVATION
            vol = self._volume(_circle(x, y), 0, 15_000, 700, self._end_s, radius=r)
            f = self._file("north", "/v1/constraints", {"kind": "air_defence_activity", "volumes": [vol]})
            self.ids["reservation"] = f["id"]
        elif label.startswith("drones files"):
            x, y, r = SURVEY_V1
            vol = self._volume(_circle(x, y), 0, 600, 400, self._end_s, radius=r)
            f = self._file("drones", "/v1/intents", {"kind": "uas_flight", "volumes": [vol]})
            self.ids["survey"], self.ids["survey_ovn"] = f["id"], f["ovn"]
        elif label.startswith("north files"):
            vol = self._volume(_box(*PATROL), 300, PATROL_CEILING_M, 700, self._end_s)
            f = self._file("north", "/v1/intents", {"kind": "crewed_flight", "volumes": [vol]})
            self.ids["patrol"], self.ids["patrol_ovn"] = f["id"], f["ovn"]
        elif label.startswith("south files"):
            vol = self._volume(_box(*TRANSIT), 4000, 9000, 300, self._end_s)
            f = self._file("south", "/v1/intents", {"kind": "crewed_flight", "volumes": [vol]})
            self.ids["transit"], self.ids["transit_ovn"] = f["id"], f["ovn"]
        elif label.startswith("drones moves"):
            x, y, r = SURVEY_V2
            vol = self._volume(_circle(x, y), 0, 600, 400, self._end_s, radius=r)
            body = {"ovn": self.ids["survey_ovn"], "kind": "uas_flight", "volumes": [vol]}
            f = self._call("drones", "PUT", f"/v1/intents/{self.ids['survey']}", json=body)["filing"]
            self.ids["survey_ovn"] = f["ovn"]
        elif label.startswith("south sends"):
            sent = self._call(
                "south", "POST", "/v1/hotline/messages", json={"code": "CHANNEL_CHECK", "to": ["north"]}
            )
            self.ids["channel_check"] = sent["message"]["id"]
        elif label.startswith("shield asks"):
            x, y, alt = viper(t)
            fields = {"track": "VIPER1", "position": list(_lonlat(x, y)), "altitude": round(alt),
                      "time": self._iso(t)}  # fmt: skip
            sent = self._call("shield", "POST", "/v1/hotline/messages",
                              json={"code": "IDENTITY_QUERY", "to": ["north"], "fields": fields})  # fmt: skip
            self.ids["identity_query"] = sent["message"]["id"]
        elif label.startswith("north answers MINE"):
            self._acknowledge("north")
            self._call("north", "POST", f"/v1/hotline/messages/{self.ids['identity_query']}/reply",
                       json={"reply": "MINE"})  # fmt: skip
        elif label.startswith("north answers the channel"):
            self._call("north", "POST", f"/v1/hotline/messages/{self.ids['channel_check']}/reply",
                       json={"reply": "ROGER"})  # fmt: skip

    def run(self, on_step: Callable[[Step], None] | None = None, *, until_s: float = DURATION_S) -> None:
        """Play one round of the scenario (up to `until_s`), on the clock, with new filings
        and messages; `on_step` after each scripted event."""
        self._t0 = self.clock.now()
        self.ids.clear()
        self.log.clear()
        self._airborne.clear()
        script = list(STEPS)
        t = 0
        while t <= until_s and not self.stop.is_set():
            self._sleep_until(t)
            self._tracks(t)  # first: the reports are as fresh as the clock's rate allows
            while script and script[0].at_s <= t:
                step = script.pop(0)
                self._event(step)
                self.log.append(f"{t:5.0f} s  {step.label}")
                if on_step:
                    on_step(step)
            if t % HEARTBEAT_S == 0:
                self._heartbeats(t)
            t += STEP_S

    def finish(self) -> None:
        """End the round, so that the next one starts clean: each filing it made ended by
        its owner, then every message still waiting for a party's reply answered by that
        party's client (ROGER where allowed, else the first reply allowed). Its tactical
        alert closed when VIPER 1 came back to its volume; its aircraft, no longer
        reporting, leave the picture a minute later."""
        for name, (party, kind) in _FILINGS.items():
            if name not in self.ids:
                continue
            path = f"/v1/{kind}/{self.ids[name]}"
            current = self._call(party, "GET", path)
            if current["state"] != "ended":
                self._call(party, "POST", f"{path}/state", json={"ovn": current["ovn"], "state": "ended"})
        for party in self.tokens:
            if party == "admin":
                continue
            for m in self._call(party, "GET", "/v1/hotline/messages", params={"box": "in", "limit": 1000}):
                mine = [d for d in m["deliveries"] if d["recipient"] == party]
                if m["replies"] and mine and mine[0]["reply"] in (None, "STANDBY"):
                    reply = "ROGER" if "ROGER" in m["replies"] else m["replies"][0]
                    self._call(party, "POST", f"/v1/hotline/messages/{m['id']}/reply", json={"reply": reply})

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
