"""Outbound webhooks (Standard Webhooks): endpoints, the delivery outbox, signing, sending and replay.

An event is stored as one `WebhookDelivery` row per subscribed endpoint in the transaction that
caused it (`outbox.webhook_emit`); after commit a task on the webhooks queue attempts it through the
integration gateway. Retries are driven from the rows (`next_attempt_at`), never from broker state,
so a worker or broker restart loses nothing: the sweeper (`webhooks.dispatch_due`, every minute on
beat, or `manage.py run_outbox` without a broker) picks up whatever is due.
"""
