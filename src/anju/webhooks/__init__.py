"""Signed webhooks: subscriptions, an outbox, delivery with retries and a delivery log."""
