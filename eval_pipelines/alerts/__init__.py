"""Alerts: rules over drift, KPIs, gates, estimates and checks, delivered once per finding (docs/alerts.md)."""
