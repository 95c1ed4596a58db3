"""Ids in URLs: positive integers within PostgreSQL's `integer`; anything else is a 404.

The converter's pattern refuses zero, signs and non-digits; values past the
column's range are refused after matching (a converter that refuses them while
matching makes werkzeug answer 405 instead of 404).
"""
from flask import Flask, abort
from werkzeug.routing import BaseConverter

from placement.items import INT32_MAX


class IdConverter(BaseConverter):
    """`<id:name>`: 1 .. 2**31-1."""

    regex = r"[1-9][0-9]{0,9}"
    part_isolating = True

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value) -> str:
        return str(int(value))


def id_schema(converter) -> dict:
    """How an id appears in the OpenAPI document."""
    return {"type": "integer", "minimum": 1, "maximum": INT32_MAX}


def init_app(app: Flask) -> None:
    """Register the converter and the range check that completes it."""
    app.url_map.converters["id"] = IdConverter

    @app.url_value_preprocessor
    def _ids_in_range(endpoint, values):
        for name, value in (values or {}).items():
            if isinstance(value, int) and value > INT32_MAX:
                abort(404)
