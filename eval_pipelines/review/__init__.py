"""The review loop: audit samples for expert review and the estimates they make unbiased (functional core only)."""
