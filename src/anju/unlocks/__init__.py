"""Unlock records: every signed unlock attempt a lock reported, searchable and re-verifiable."""
