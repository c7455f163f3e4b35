"""Business KPIs and the impact model."""
