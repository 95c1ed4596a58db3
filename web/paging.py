"""Paginated listings: one page of a query, and X-Pagination documented as what it is on the wire."""
from __future__ import annotations

from flask_smorest import Blueprint
from sqlalchemy import Select, func, select

from web.extensions import db


class PagedBlueprint(Blueprint):
    """Documents X-Pagination as a string holding a JSON object (flask-smorest documents an object)."""

    def _document_pagination_metadata(self, spec, resp_doc):
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "JSON object: total, total_pages, first_page, last_page, page, previous_page, next_page",
            "schema": {"type": "string"},
        }


def page_of(query: Select, order_by, pagination_parameters) -> list:
    """The rows of the requested page; an empty list past the end (which also keeps OFFSET in range)."""
    session = db.session
    count = session.scalar(select(func.count()).select_from(query.subquery()))
    pagination_parameters.item_count = count
    if pagination_parameters.first_item >= count:
        return []
    return session.scalars(query.order_by(order_by).offset(pagination_parameters.first_item)
                           .limit(pagination_parameters.page_size)).all()
