"""Every section of a ``workbench.yml`` validated at once, as the commands that read it would.

:func:`workbench.experiments.config.load_config` checks the experiment model; the other sections belong to the
modules that use them (``database`` to :mod:`workbench.db.settings`, ``events`` to
:mod:`workbench.events`, ``event_sources`` to :mod:`workbench.toolkit.sources`, each experiment's
``analysis`` to :mod:`workbench.stats`). This module calls each of them, so that one call tells
whether a config file will be accepted everywhere.
"""

from __future__ import annotations

from pathlib import Path

from workbench.experiments.config import Config, load_config


def validate_config_file(path: Path) -> Config:
    """The validated :class:`Config` of ``path`` once every section has passed its own checks;
    the first mistake raises its :class:`~workbench.errors.ConfigError` sentence."""
    from workbench.db.settings import resolve_database
    from workbench.events.properties import property_spec
    from workbench.events.settings import event_settings
    from workbench.experiments.analysis import analysis_settings
    from workbench.experiments.engine import experiments
    from workbench.toolkit.sources import configured_sources

    path = Path(path)
    config = load_config(path).strict()
    resolve_database(config_path=path)
    events = event_settings(path)
    for name, declaration in events.properties.items():
        property_spec(name, declaration, where=f"{path}: events.properties")
    configured_sources(path)
    for exp in experiments(config):
        analysis_settings(exp)
    return config
