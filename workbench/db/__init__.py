"""Databases: opening an analysis session (``connection``, ``settings``), every dialect difference
(``dialects``), bulk writes (``bulk_write``), Spark SQL (``spark``) and the SQL files in ``sql/``
(``sql_files``).
"""
