"""The edge-case library."""
