"""A quick path through a marshmallow schema's `load`, for bodies of many plain objects (an import's lines).

Why: a 1,000-line import is about 3,000 nested objects, and marshmallow's per-field machinery (an
error store, hooks and missing-value handling for every one of them) was half of the API's CPU for
that request (py-spy under the bench's bulk intake; bench/README.md, "Import intake").

How it stays the schema's load: the quick path walks the schema's own fields and calls their own
validators, and it accepts only what marshmallow accepts, building the same result. At the first
doubt (a type marshmallow might coerce or refuse, a validator that fails, an unknown key, a missing
field) it stops and the whole body goes to marshmallow, whose answer, errors included, is the one
given. The schema stays the one source of the rules and of the OpenAPI document; a field or a hook
this module does not model makes `QuickLoad` fail when the schema is built, not guess.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, missing
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA

Check = Callable[[Any], Any]


class _Doubt(Exception):
    """The value may not be what marshmallow accepts as it is: marshmallow decides."""


def _validated(field: fields.Field, kind: type) -> Check:
    """The value if it is exactly of `kind` and passes the field's validators (each raises
    ValidationError when it fails)."""
    validators = field.validators

    def check(value):
        if type(value) is not kind:
            raise _Doubt
        for validator in validators:
            validator(value)
        return value
    return check


def _list_of(field: fields.List) -> Check:
    inner, list_checked = _field_check(field.inner), _validated(field, list)

    def check(value):
        if type(value) is not list:
            raise _Doubt
        return list_checked([inner(item) for item in value])
    return check


def _field_check(field: fields.Field) -> Check:
    if field.data_key is not None or field.attribute is not None or field.load_default is not missing \
            or field.allow_none:
        raise TypeError(f"quick_load does not model {field!r}'s options: extend it or drop QuickLoad")
    if type(field) is fields.Integer:
        return _validated(field, int)  # a bool or a float is not exactly int: marshmallow decides
    if type(field) is fields.String:
        return _validated(field, str)
    if type(field) is fields.List:
        return _list_of(field)
    if type(field) is fields.Nested and not field.many and field.unknown is None:
        return _schema_check(field.schema)
    raise TypeError(f"quick_load does not model {type(field).__name__} fields: extend it or drop QuickLoad")


def _schema_check(schema: Schema, unknown: str | None = None) -> Check:
    """The check of an object against `schema`'s load fields, unknown keys treated as `unknown` says
    (None: as the schema says)."""
    hooks = schema._hooks  # marshmallow's registry of @pre_load etc. (read only): a hook is not modelled here
    if any(hooks[kind] for kind in (PRE_LOAD, POST_LOAD, VALIDATES, VALIDATES_SCHEMA)) or schema.many \
            or schema.partial or schema.only or schema.exclude:
        raise TypeError(f"quick_load does not model {type(schema).__name__}'s hooks or options")
    unknown = schema.unknown if unknown is None else unknown
    if unknown not in (RAISE, EXCLUDE):
        raise TypeError(f"quick_load does not model unknown={unknown!r}")
    checks = [(name, field.required, _field_check(field)) for name, field in schema.load_fields.items()]
    names = {name for name, _, _ in checks}

    def check(value):
        if type(value) is not dict or (unknown == RAISE and not value.keys() <= names):
            raise _Doubt
        loaded = {}
        for name, required, field_check in checks:
            if name in value:
                loaded[name] = field_check(value[name])
            elif required:
                raise _Doubt
        return loaded
    return check


class QuickLoad(Schema):
    """A schema whose `load` tries the quick path first (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._quick = {unknown: _schema_check(self, unknown) for unknown in (None, RAISE, EXCLUDE)}

    def load(self, data, *, many=None, partial=None, unknown=None):
        quick = self._quick.get(unknown)
        if quick is not None and many is None and partial is None:
            with suppress(Exception):  # a doubt, or a validator's own error: marshmallow answers
                return quick(data)
        return super().load(data, many=many, partial=partial, unknown=unknown)
