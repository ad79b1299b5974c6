"""Checks of what the study API client sends, before it is sent, each refused with one sentence:
the rules are the production server's (``Algorithmic-Personalization/server``, ``src/server/api-2/``
and ``src/server/api/uploadParticipants.ts``) and the seed's."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from pathlib import Path

from workbench.errors import WorkbenchError, shown

MAX_CSV_BYTES = 50_000_000  # the server's JSON limit is 50 MB; the upload has none, so keep to it
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
ARMS = {"control": "control", "treatment": "treatment", 0: "control", 1: "treatment"}


def code(value: object) -> str:
    """A participant code: a non-empty string without control characters."""
    if not isinstance(value, str) or not value or _CONTROL.search(value):
        raise WorkbenchError(
            f"code={shown(value)} is not a participant code: pass a non-empty string without control characters."
        )
    return value


def arm(value: object) -> str:
    """ "control" or "treatment" (also 0 or 1, as the seed allows), sent as the string the update route accepts."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value not in ARMS:
        raise WorkbenchError(f"arm={shown(value)} is not an arm: pass 'control' or 'treatment' (or 0 or 1).")
    return ARMS[value]


def flag(name: str, value: object) -> bool:
    """A true/false option (``is_paid`` goes on the wire as the number 1 or not at all)."""
    if not isinstance(value, bool):
        raise WorkbenchError(f"{name}={shown(value)} is not True or False: pass a boolean.")
    return value


def phase(value: object) -> int:
    """0 (pre-intervention), 1 (intervention) or 2 (post-intervention)."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2):
        raise WorkbenchError(f"phase={shown(value)} is not a phase: pass 0, 1 or 2.")
    return value


def whole(name: str, value: object, minimum: int) -> int:
    """A whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkbenchError(f"{name}={shown(value)} is not a whole number of at least {minimum}: pass one.")
    return value


def hours(value: object) -> float:
    """A positive, finite number of hours."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise WorkbenchError(
            f"hours={shown(value)} is not a positive number of hours: pass a number such as 24 or 12.5."
        )
    return float(value) if isinstance(value, float) else value


def title(value: object) -> str:
    if not isinstance(value, str):
        raise WorkbenchError(f"title={shown(value)} is not a string: pass the channel source's title as text.")
    return value


def _strings(name: str, what: str, values: object) -> list[str]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise WorkbenchError(f"{name}={shown(values)} is not a list of {what}: pass a list such as ['a', 'b'].")
    out = list(values)
    bad = [v for v in out if not isinstance(v, str) or not v.strip() or _CONTROL.search(v)]
    if bad:
        raise WorkbenchError(f"{name} holds {shown(bad[0])}, which is not one of the {what}: pass non-empty strings.")
    return out


def channel_ids(values: object) -> list[str]:
    """YouTube channel ids, at least one, in rotation order."""
    out = _strings("channel_ids", "YouTube channel ids", values)
    if not out:
        raise WorkbenchError("channel_ids is empty: a channel source needs at least one YouTube channel id.")
    return out


def voucher_codes(values: object) -> list[str]:
    """Voucher codes, at least one, each once (the database holds a code once)."""
    out = _strings("codes", "voucher codes", values)
    if not out:
        raise WorkbenchError("codes is empty: pass at least one voucher code.")
    duplicates = sorted({c for c in out if out.count(c) > 1})
    if duplicates:
        raise WorkbenchError(f"codes repeats {shown(duplicates[0])}: pass each voucher code once.")
    return out


def participants_csv(path: object) -> str:
    """The text of a participants CSV, checked as the server reads it: a header with ``code`` and
    ``arm``; per row a code, arm control|treatment, isPaid empty, 0 or 1, phase empty, 0, 1 or 2."""
    file = Path(path)  # type: ignore[arg-type]
    if not file.is_file():
        raise WorkbenchError(f"{shown(str(file))} is not a file: pass the path of the participants CSV.")
    if file.stat().st_size > MAX_CSV_BYTES:
        raise WorkbenchError(
            f"{shown(str(file))} is larger than {MAX_CSV_BYTES:,} bytes: split it into smaller uploads."
        )
    try:
        text = file.read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text), strict=True))
        header = csv.DictReader(io.StringIO(text)).fieldnames or []
    except (UnicodeDecodeError, csv.Error) as exc:
        raise WorkbenchError(
            f"{shown(str(file))} is not a UTF-8 CSV file ({type(exc).__name__}): save it as UTF-8 CSV."
        ) from None
    missing = [c for c in ("code", "arm") if c not in header]
    unknown = [c for c in header if c not in ("code", "arm", "isPaid", "phase")]
    if missing or unknown:
        raise WorkbenchError(
            f"{shown(str(file))} has columns {shown(header)}: the server reads code, arm, isPaid and phase, and needs code and arm."
        )
    for line, row in enumerate(rows, start=2):
        problem = (
            "no code"
            if not (row.get("code") or "")
            else f"arm {shown(row.get('arm'))}"
            if row.get("arm") not in ("control", "treatment")
            else f"isPaid {shown(row.get('isPaid'))}"
            if (row.get("isPaid") or "") not in ("", "0", "1")
            else f"phase {shown(row.get('phase'))}"
            if (row.get("phase") or "") not in ("", "0", "1", "2")
            else ""
        )
        if problem:
            raise WorkbenchError(
                f"{shown(str(file))} line {line} has {problem}: each row needs a code, arm control or treatment, "
                "isPaid empty, 0 or 1 and phase empty, 0, 1 or 2."
            )
    if not rows:
        raise WorkbenchError(f"{shown(str(file))} has no participant rows: nothing to upload.")
    return text
