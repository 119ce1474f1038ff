"""A small seeded example: the agreement's parties, an admin, and a few filings,
two of which conflict. Used by `deconflict serve --seed-example`."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from deconflict.errors import AlreadyExists
from deconflict.model import Circle, FilingType, Polygon, Role, State, Volume4D
from deconflict.service import Draft, Services

TOKENS_FILE = "example-tokens.json"


def _box(lon: float, lat: float, half_deg: float) -> Polygon:
    return Polygon(
        (
            (lon - half_deg, lat - half_deg),
            (lon + half_deg, lat - half_deg),
            (lon + half_deg, lat + half_deg),
            (lon - half_deg, lat + half_deg),
        )
    )


def seed_example(services: Services, data_dir: Path) -> dict[str, str] | None:
    """Seed an empty store; returns the tokens (also written, mode 0600, to the data
    directory), or None when the store already holds parties."""
    if services.parties.all():
        return None
    tokens: dict[str, str] = {}
    try:
        _, tokens["admin"] = services.parties.add("admin", role=Role.ADMIN, name="Service administrator")
        for p in services.agreement.parties:
            role = Role.OBSERVER if p.id == "shield" else Role.OPERATOR
            _, tokens[p.id] = services.parties.add(p.id, role=role)
    except AlreadyExists:
        return None
    parties = {p.id: p for p in services.parties.all()}
    now = services.clock.now().replace(microsecond=0)
    start = now + timedelta(hours=2)
    end = start + timedelta(hours=2)
    f = services.filings
    kinds = services.agreement.kinds

    def known_ovns() -> list[str]:
        with services.store.read() as r:
            return [k.ovn for k in r.list_filings()]

    # A drone survey first; then a crewed flight over it, which outranks it: the crewed
    # flight's key shows it has seen the survey, so it is accepted and the conflict recorded.
    if "drones" in parties and "uas_flight" in kinds:
        survey = Volume4D(Circle(36.05, 35.1, 3000), 0, 500, start, end)
        f.submit(parties["drones"], Draft(FilingType.INTENT, "uas_flight", (survey,), State.ACCEPTED))
    if "north" in parties and "crewed_flight" in kinds:
        patrol = Volume4D(_box(36.2, 35.2, 0.25), 300, 9000, start, end)
        f.submit(parties["north"], Draft(FilingType.INTENT, "crewed_flight", (patrol,)), known_ovns())
    if "south" in parties and "crewed_flight" in kinds:
        transit = Volume4D(_box(35.4, 33.6, 0.3), 4000, 10000, start, end)
        f.submit(parties["south"], Draft(FilingType.INTENT, "crewed_flight", (transit,)), known_ovns())
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / TOKENS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(tokens, fh, indent=2)
    return tokens
