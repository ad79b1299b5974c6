"""A report that ends early: the HTML export (``templates/nbconvert/workbench_report/conf.json``
registers :class:`EndOfReport`) keeps the cells up to the first whose output carries
:data:`~workbench.reports.tables.END_OF_REPORT` metadata and drops the rest, so an experiment
without data gets a short page; the executed notebook keeps every cell."""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor

from workbench.reports.tables import END_OF_REPORT


def ends_report(cell) -> bool:
    """Whether one of ``cell``'s outputs is marked as the end of the report."""
    return any(
        all(output.get("metadata", {}).get(k) == v for k, v in END_OF_REPORT.items())
        for output in cell.get("outputs", [])
    )


class EndOfReport(Preprocessor):
    """Drops every cell after the first that :func:`ends_report`."""

    def preprocess(self, nb, resources):
        for index, cell in enumerate(nb.cells):
            if ends_report(cell):
                nb.cells = nb.cells[: index + 1]
                break
        return nb, resources
