"""The item list rules shared by submissions and carts."""
import pytest

from placement.items import InvalidItems, normalize


def test_lines_of_one_product_are_merged_and_sorted_by_product():
    raw = [{"product_id": 9, "quantity": 1}, {"product_id": 2, "quantity": 3}, {"product_id": 9, "quantity": 4}]
    assert normalize(raw) == [{"product_id": 2, "quantity": 3}, {"product_id": 9, "quantity": 5}]


def test_an_empty_list_is_valid_and_empty():
    assert normalize([]) == []


@pytest.mark.parametrize("raw", [
    None, {"items": []}, ["x"], [{"product_id": 1}], [{"product_id": "1", "quantity": 1}],
    [{"product_id": 1, "quantity": 0}], [{"product_id": 1, "quantity": -2}], [{"product_id": 1, "quantity": 1.5}],
    [{"product_id": True, "quantity": 1}], [{"product_id": 2**31, "quantity": 1}],
    [{"product_id": 1, "quantity": 2**31 - 1}, {"product_id": 1, "quantity": 1}],
])
def test_anything_else_is_refused(raw):
    with pytest.raises(InvalidItems):
        normalize(raw)
