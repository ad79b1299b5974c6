"""The GrowthBook guide and the getting-started tour quote the repository's workbench.yml: each of
their config fragments must still be an excerpt of that file, entry for entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
QUOTING = {"docs/guides/growthbook.md": 6, "docs/getting-started.md": 1}  # file -> entries it quotes at least
MODEL_KEYS = ("identifier_types", "identity_joins", "assignment_queries", "metrics", "experiments")
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def entry_id(entry):
    """How an entry is found again in the file: its key (experiments, whose name is for people) or
    name, else the whole entry."""
    return (entry.get("key") or entry.get("name") or yaml.safe_dump(entry)) if isinstance(entry, dict) else entry


@pytest.mark.parametrize("doc", sorted(QUOTING))
def test_config_fragments_are_excerpts_of_the_repository_config(doc):
    config = yaml.safe_load((ROOT / "workbench.yml").read_text(encoding="utf-8"))
    quoted = 0
    for block in YAML_BLOCK.findall((ROOT / doc).read_text(encoding="utf-8")):
        fragment = yaml.safe_load(block)
        for key in set(fragment) & set(MODEL_KEYS):
            if not isinstance(fragment[key], list) or not fragment[key] or not isinstance(fragment[key][0], dict):
                assert fragment[key] == config[key], key
                quoted += 1
                continue
            entries = {entry_id(e): e for e in config[key]}
            for entry in fragment[key]:
                assert entry_id(entry) in entries, f"{key}: {entry_id(entry)!r} is not in workbench.yml"
                whole = entries[
                    entry_id(entry)
                ]  # a fragment may quote some of an entry's keys, each as the file has it
                assert entry == {k: whole.get(k) for k in entry}, (
                    f"{key}: {entry_id(entry)!r} differs from workbench.yml"
                )
                quoted += 1
    assert (
        quoted >= QUOTING[doc]
    )  # growthbook.md: identifier types, the join, two assignment queries, purchased, an experiment
