"""Tenants' repair requests and feedback, and staff activity records (R13, R14)."""
