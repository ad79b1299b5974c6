"""The ``workbench`` console command. Each module below adds the commands of one concern."""

from workbench.cli import data  # noqa: F401  (registers load, info, overview)
from workbench.cli import generate  # noqa: F401  (registers generate)
from workbench.cli import events  # noqa: F401  (registers ingest events, identities resolve)
from workbench.cli import analyze  # noqa: F401  (registers analyze)
from workbench.cli import study  # noqa: F401  (registers study generate, study report, study check)
from workbench.cli import lab  # noqa: F401  (registers lab)
from workbench.cli import reports  # noqa: F401  (registers report, run-reports, dashboard, new)
from workbench.cli import experiments  # noqa: F401  (registers experiments, stats)
from workbench.cli.app import app

__all__ = ["app"]
