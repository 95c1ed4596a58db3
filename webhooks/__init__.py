"""Telling clients when their jobs end: signed callbacks, owed through an outbox, sent with retries."""
