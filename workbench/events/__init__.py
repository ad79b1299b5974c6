"""Grouparoo-style events (seed 001): ingestion that loses nothing, identity resolution, profile
properties and exploration, in the schema named by ``events.schema`` (default ``grouparoo``).

The modules import pyarrow, pandas and plotly only inside the functions that need them.
"""

from workbench.events.explore import event_catalogue, event_counts
from workbench.events.identities import resolve_identities
from workbench.events.ingest import ingest
from workbench.events.properties import profile_properties

__all__ = ["event_catalogue", "event_counts", "ingest", "profile_properties", "resolve_identities"]
