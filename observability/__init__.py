"""Logs and metrics shared by the API and the worker: what operators read and scrape."""
