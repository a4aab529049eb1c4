"""The master's live dashboard: a page of charts served from the package, fed by a
bounded history the master samples once a second (see :mod:`master.dashboard.routes`)."""

from master.dashboard.history import CHARTS, DashboardHistory, Sample
from master.dashboard.routes import DASHBOARD_PATH, Dashboard

__all__ = ["CHARTS", "DASHBOARD_PATH", "Dashboard", "DashboardHistory", "Sample"]
