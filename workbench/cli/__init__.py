"""The ``workbench`` console command. Each module below adds the commands of one concern."""

from workbench.cli import (
    analyze,  # noqa: F401  (registers analyze)
    data,  # noqa: F401  (registers load, info, overview)
    event_service,  # noqa: F401  (registers events keys, events serve, events resolve)
    events,  # noqa: F401  (registers ingest events, identities resolve)
    experiments,  # noqa: F401  (registers experiments, stats)
    generate,  # noqa: F401  (registers generate)
    lab,  # noqa: F401  (registers lab)
    power,  # noqa: F401  (registers power)
    reports,  # noqa: F401  (registers report, run-reports, dashboard, new)
    study,  # noqa: F401  (registers study generate, study report, study check)
)
from workbench.cli.app import app

__all__ = ["app"]
