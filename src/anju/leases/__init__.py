"""Leases of long-term and public rental housing: tenants, rent schedule, payments, arrears
freeze and unfreeze (R13, R14c; docs/leases.md)."""
