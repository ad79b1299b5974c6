"""What the end-to-end tests share over the generator's data: a database filled by ``generated``
and the small ``workbench.yml`` they write (one assignment query with a browser dimension, two
metrics on orders, and entries for the generator's 2-arm experiments)."""

from __future__ import annotations

import workbench as wb

SETUP = """
identifier_types: [user_id]
assignment_queries:
  - name: users
    identifier_type: user_id
    sql: SELECT userId AS user_id, timestamp, experimentId AS experiment_id, variationId AS variation_id, browser FROM experiment_viewed
    dimensions: [browser]
metrics:
  - name: purchased
    type: binomial
    sql: SELECT userId AS user_id, timestamp FROM orders
  - name: revenue
    type: mean
    sql: SELECT userId AS user_id, timestamp, amount AS value FROM orders
"""


def experiment_entry(key: str) -> str:
    """The ``experiments:`` item of a 2-arm generated experiment: purchased, then revenue."""
    return f"""  - key: {key}
    start: 2026-09-25
    end: 2026-11-23
    variations: ["0", "1"]
    goal_metrics: [purchased]
    secondary_metrics: [revenue]
"""


def generated(url: str, users: int = 3000, seed: int = 5) -> str:
    """``url`` after the generator wrote ``users`` users into it."""
    from workbench.generator import generate

    db = wb.connect(url, read_only=False)
    generate(db, users=users, seed=seed)
    db.dispose()
    return url
