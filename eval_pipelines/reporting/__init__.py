"""The leadership report: what the AI delivered, how well it works, what changed, each number from a warehouse query."""
