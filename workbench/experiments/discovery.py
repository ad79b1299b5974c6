"""Experiments found in the data: every experiment and variation the assignment queries logged
(:func:`discover_experiments`), and config stubs for those not yet configured
(:func:`write_experiment_stubs`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.experiments import sql as sql_builder
from workbench.experiments.config import EXPERIMENT_KEY, Config, load_config
from workbench.experiments.engine import _database

if TYPE_CHECKING:
    import pandas as pd


def discover_experiments(db=None, config: Config | None = None, *, write_stubs: bool = False) -> pd.DataFrame:
    """Experiments found in every assignment query: ``assignment_query, experiment_id,
    variation_id, units, first_exposure, last_exposure, configured``. With ``write_stubs``,
    appends a config entry for each unconfigured experiment to the config file."""
    import pandas as pd

    config = config or load_config()
    db = _database(db)
    frames = []
    for name, aq in config.assignment_queries.items():
        query = sql_builder.discovery_query(aq)
        found = db.sql(query.sql, limit=None)
        found.insert(0, "assignment_query", name)
        frames.append(found)
    result = pd.concat(frames, ignore_index=True)
    # a broken entry counts as configured: it needs fixing, not a stub
    result["configured"] = result["experiment_id"].isin(config.experiment_keys)
    if write_stubs:
        write_experiment_stubs(config, result)
    return result


def write_experiment_stubs(config: Config, found: pd.DataFrame) -> list[str]:
    """Append a stub entry per unconfigured experiment of ``found`` (first assignment query that
    logged it) to ``config.path``; returns the keys written."""
    import yaml

    new = found[~found["configured"]]
    stubs, keys = [], []
    for key, rows in new.groupby("experiment_id", sort=True):
        if not _valid_key(key):
            continue
        aq = rows["assignment_query"].iloc[0]
        rows = rows[rows["assignment_query"] == aq]
        variations = sorted(rows["variation_id"].astype(str))
        stubs.append(
            {
                "key": key,
                "assignment_query": aq,
                "start": str(_day(rows["first_exposure"].min())),
                "end": str(_day(rows["last_exposure"].max())),
                "variations": variations,
                "control": variations[0],
                "goal_metrics": [],
                "secondary_metrics": [],
                "guardrail_metrics": [],
            }
        )
        keys.append(key)
    if not stubs:
        return []
    path = Path(config.path)
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    header = next((i for i, line in enumerate(lines) if re.match(r"^experiments\s*:", line)), None)
    if header is None:
        lines += ["", "experiments:"]
        header = len(lines) - 1
    lines[header] = "experiments:"  # also turns `experiments: []` into a block list
    after = next((i for i in range(header + 1, len(lines)) if re.match(r"^[A-Za-z_]", lines[i])), len(lines))
    while after > header + 1 and not lines[after - 1].strip():
        after -= 1
    indent = next((m.group(1) for line in lines[header + 1 : after] if (m := re.match(r"^(\s*)- ", line))), "  ")
    block = yaml.safe_dump(stubs, sort_keys=False, default_flow_style=None).splitlines()
    block = [f"{indent}# stubs written by `workbench experiments --write-stubs`: add metrics"] + [
        indent + line for line in block
    ]
    lines[after:after] = block
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    load_config(path)  # the file must still be valid
    return keys


def _valid_key(key: str) -> bool:
    """Whether a discovered key can be written as a config key."""
    return bool(EXPERIMENT_KEY.match(str(key)))


def _day(value) -> str:
    """``YYYY-MM-DD`` of a timestamp."""
    import pandas as pd

    return pd.Timestamp(value).date().isoformat()
