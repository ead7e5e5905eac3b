"""Retention (L10, L12, F5): policies per kind of data, anchors, and the sweep that deletes or
crypto-shreds what is due and proves it in the audit log."""
