"""One valid value of each field type, for building messages of any code in tests."""

from __future__ import annotations

from typing import Any

from deconflict.hotline.catalogue import Code, FieldType

SAMPLE: dict[FieldType, Any] = {
    FieldType.FILING: "f-1",
    FieldType.CONFLICT: "c-1",
    FieldType.MESSAGE: "m-1",
    FieldType.TRACK: "trk-7",
    FieldType.PARTY: "north",
    FieldType.KIND: "uas_flight",
    FieldType.AREA: {"type": "Point", "coordinates": [36.05, 35.1], "radius_m": 3000},
    FieldType.TIME_WINDOW: {"start": "2030-06-01T14:00:00Z", "end": "2030-06-01T15:30:00Z"},
    FieldType.ALTITUDE_BAND: {"lower_m": 0, "upper_m": 1200.5},
    FieldType.POSITION: [36.05, -35.1],
    FieldType.ALTITUDE: 3000,
    FieldType.INSTANT: "2030-06-01T14:05:00Z",
    FieldType.DISTANCE: 1852,
    FieldType.COUNT: 2,
    FieldType.FLAG: True,
    FieldType.TEXT: "Runway 27 closed",
}


def sample_fields(code: Code) -> dict[str, Any]:
    return {name: SAMPLE[ftype] for name, ftype in code.fields.items()}
