"""Officer queries: read-only look-ups by police and housing officers within their
jurisdiction, each with a recorded legal basis (R14 mobile enforcement)."""
