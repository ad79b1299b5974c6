"""Maintainer tools that are not part of the installed package: the generators of the reference
pages under ``docs/reference/`` (``python -m tools.reference_docs``)."""
