"""Callbacks to the backend: the outbox, signed delivery, retry policy, heartbeats."""
