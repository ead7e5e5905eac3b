"""Credentials of a grant: issue, per-lock delivery, suspend, resume, revoke, lost, replace."""
