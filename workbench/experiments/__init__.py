"""The experiment engine: ``workbench.yml`` → one query per experiment → sufficient statistics →
results. ``config`` holds the validated project model, ``sql`` compiles an experiment into SQL,
``engine`` runs it on a database, ``analysis`` hands the small tables to :mod:`workbench.stats`;
``discovery``, ``cumulative``, ``baselines`` and ``data_quality`` build on the same pieces.
"""
