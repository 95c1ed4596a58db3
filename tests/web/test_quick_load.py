"""The quick load answers exactly as marshmallow does: the same result for what it accepts, marshmallow's
own answer (errors included) for the rest, on bodies generated around the import schema's edges."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_load

from placement.items import INT32_MAX
from web.quick_load import QuickLoad
from web.schemas import import_request_schema, order_request_schema

MAX_LINES, MAX_ITEMS, MAX_QUANTITY = 5, 3, 10


def import_schema(webhooks_enabled: bool, allow_private: bool) -> QuickLoad:
    # The application's own factories, with limits small enough for the edges to be hit.
    order = order_request_schema(MAX_ITEMS, MAX_QUANTITY, webhooks_enabled, allow_private)
    return import_request_schema(order, MAX_LINES)()


SCHEMAS = [import_schema(True, False), import_schema(True, True), import_schema(False, False)]

junk = st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=3), st.just([]), st.just({}),
                 st.sampled_from([0, -1, 1.0, "1", INT32_MAX + 1, MAX_QUANTITY + 1, "", "a b", "k" * 256,
                                  "ftp://198.51.100.1/", "https:///nohost", "http://10.0.0.1/" + "p" * 3000]))
ids = st.one_of(st.sampled_from([1, INT32_MAX]), st.integers(1, 1000))
item = st.fixed_dictionaries({"product_id": ids, "quantity": st.integers(1, MAX_QUANTITY)})
line = st.fixed_dictionaries({"customer_id": ids}, optional={
    "items": st.lists(item, min_size=1, max_size=MAX_ITEMS),
    "idempotency_key": st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7e), min_size=1, max_size=4),
    "callback_url": st.sampled_from(["https://203.0.113.7/hook", "http://127.0.0.1:9/x"])})
well_formed = st.fixed_dictionaries({"orders": st.lists(line, min_size=1, max_size=MAX_LINES)})


def containers(value, found=None):
    """Every dict and list inside `value` (itself included)."""
    found = [] if found is None else found
    if isinstance(value, (dict, list)):
        found.append(value)
        for inner in value.values() if isinstance(value, dict) else value:
            containers(inner, found)
    return found


@st.composite
def one_thing_wrong(draw):
    """A well-formed body with one change somewhere: a value replaced by junk or by another shape,
    a key dropped or added, a list emptied or grown past its limit."""
    data = draw(well_formed)
    place = draw(st.sampled_from(containers(data)))
    if isinstance(place, dict):
        key = draw(st.sampled_from([*place, "note"]))
        action = draw(st.sampled_from(["replace", "drop"]))
        if action == "drop":
            place.pop(key, None)
        else:
            place[key] = draw(st.one_of(junk, item, line, st.lists(item, max_size=2)))
    else:
        action = draw(st.sampled_from(["replace", "clear", "grow"]))
        if action == "clear":
            place.clear()
        elif action == "grow":
            place.extend([place[0]] * (MAX_LINES + 1))
        else:
            place[draw(st.integers(0, len(place) - 1))] = draw(st.one_of(junk, item, line))
    return data


def marshmallow_answer(schema: Schema, data, **kwargs):
    try:
        return "loaded", Schema.load(schema, data, **kwargs)  # marshmallow's own load, no quick path
    except ValidationError as error:
        return "invalid", error.messages


def our_answer(schema: Schema, data, **kwargs):
    try:
        return "loaded", schema.load(data, **kwargs)
    except ValidationError as error:
        return "invalid", error.messages


@pytest.mark.parametrize("schema", SCHEMAS, ids=["webhooks", "webhooks-private", "no-webhooks"])
@settings(max_examples=200, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=one_thing_wrong(), unknown=st.sampled_from([None, EXCLUDE, INCLUDE]))
def test_the_answer_is_marshmallows(schema, data, unknown):
    kwargs = {} if unknown is None else {"unknown": unknown}
    assert our_answer(schema, data, **kwargs) == marshmallow_answer(schema, data, **kwargs)


@pytest.mark.parametrize("schema", SCHEMAS, ids=["webhooks", "webhooks-private", "no-webhooks"])
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(data=one_thing_wrong())
def test_the_quick_path_accepts_only_what_marshmallow_accepts(schema, data):
    try:
        quick = schema._quick[None](data)
    except Exception:  # noqa: BLE001 - a doubt: marshmallow decides, checked above
        return
    assert marshmallow_answer(schema, data) == ("loaded", quick)


@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(data=well_formed)
def test_a_well_formed_import_takes_the_quick_path(data):
    """Not a vacuous equivalence: well-formed imports are loaded without marshmallow, to the same result."""
    schema = import_schema(True, True)
    assert schema._quick[None](data) == Schema.load(schema, data)


def test_what_it_does_not_model_fails_when_the_schema_is_built():
    class Renamed(QuickLoad):
        customer = fields.Integer(data_key="customerId")

    class Hooked(QuickLoad):
        customer = fields.Integer()

        @post_load
        def wrap(self, data, **kwargs):
            return data

    class Dated(QuickLoad):
        at = fields.DateTime()

    class Including(QuickLoad):
        class Meta:
            unknown = INCLUDE

        customer = fields.Integer()

    for schema in (Renamed, Hooked, Dated, Including):
        with pytest.raises(TypeError, match="quick_load does not model"):
            schema()
