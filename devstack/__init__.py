"""Development and test plumbing: local services and process management for `make run` / `make test`.

Nothing here is imported by the service itself.
"""
