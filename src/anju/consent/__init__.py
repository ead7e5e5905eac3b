"""Notice and consent (L4–L6, GB/T 42574): versioned notices, append-only consent events,
SM2-signed receipts, the per-purpose consent check and withdrawal hooks."""
