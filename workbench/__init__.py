"""workbench: analyse experiments and product events stored in SQL databases, from notebooks.

The first cell of any notebook is ``import workbench as wb; db = wb.connect()``.
Heavy modules are imported lazily so that ``import workbench`` stays fast.
"""
from workbench.connection import Database, connect
from workbench.errors import WorkbenchError

__all__ = ["Database", "WorkbenchError", "connect"]
__version__ = "0.1.0"
