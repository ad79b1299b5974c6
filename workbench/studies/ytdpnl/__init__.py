"""The YouTube personalization study (seed 002): its production schema, a generator, the seed's
analyses, sanity checks and an HTTP API client returning the same frames.

Every analysis takes a :class:`~workbench.db.connection.SqlDatabase` first; ``schema=None`` reads the
connection's search path (``public`` on a real copy of the study database), ``schema="ytdpnl"``
the workbench's own generated copy.
"""

from workbench.studies.ytdpnl.analyses import (
    daily_activity,
    latest_recommendations,
    latest_sessions,
    latest_watch_times,
    monitoring,
    participant_overview,
    participant_summary,
    participants,
    participants_report,
    session_events,
    transition_audit,
)
from workbench.studies.ytdpnl.api_client import ApiClient
from workbench.studies.ytdpnl.arm_comparison import arm_comparison, arm_sufficient_statistics
from workbench.studies.ytdpnl.channel_sources import (
    channel_positions,
    pool_channels,
    rotation_speeds,
    unusable_channels,
)
from workbench.studies.ytdpnl.generator import generate_study
from workbench.studies.ytdpnl.home_page import home_page
from workbench.studies.ytdpnl.home_page_comparison import home_page_comparison, home_page_sufficient_statistics
from workbench.studies.ytdpnl.sanity_checks import SanityCheckResults, sanity_checks

__all__ = [
    "ApiClient",
    "SanityCheckResults",
    "arm_comparison",
    "arm_sufficient_statistics",
    "channel_positions",
    "daily_activity",
    "generate_study",
    "home_page",
    "home_page_comparison",
    "home_page_sufficient_statistics",
    "latest_recommendations",
    "latest_sessions",
    "latest_watch_times",
    "monitoring",
    "participant_overview",
    "participant_summary",
    "participants",
    "participants_report",
    "pool_channels",
    "rotation_speeds",
    "sanity_checks",
    "session_events",
    "transition_audit",
    "unusable_channels",
]
