"""Loaded by every schemathesis run of devstack.fuzz (SCHEMATHESIS_HOOKS): tells schemathesis that the
callback URL's pattern implies `format: uri`, which it cannot tell on its own.

For a string with both a `format` and a `pattern`, schemathesis' coverage phase looks for a value that
matches the pattern and breaks the format. Every match of webhooks.urls.URL_PATTERN is a URI, so there
is none; schemathesis knows that only of patterns that imply `uuid` or `date` (the probe values of
`_FORMAT_PROBES`, schemathesis PR 4489), and for `uri` it draws hundreds of candidates before it gives
up: about 10 s of CPU per run, half of the run's, for a case it then skips. Probes for `uri` make it
skip at once; the run generates the same cases. This sets a private table (schemathesis 4.32.5, the
latest release): no upstream issue asks for `uri` probes yet; when a release has them, delete this file.
"""
from schemathesis.specs.openapi.coverage import _schema

_schema._FORMAT_PROBES.setdefault("uri", (
    # URIs a URL pattern matches,
    ("http://example.com/", "https://example.com:8443/a/b?c=d#e"),
    # and strings that are no URI, which a pattern that implies the format must not match.
    ("http://exa mple.com/", "http://example.com/%zz", "http://[::1/", "http://example.com/a b", "http://ex\"ample.com/"),
))
