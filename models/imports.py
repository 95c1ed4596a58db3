"""An import: many orders submitted in one request. Each of its lines is an ordinary job (`jobs.import_id`,
`jobs.import_line`); this row only names the request they came in together.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Integer, func
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Import(Base):
    """One accepted import request."""

    __tablename__ = "imports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # The customer every line belongs to (who may then see the import); None when the lines are
    # several customers' (only an admin may import those, and see them).
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    # How many lines the request held (a line answered by an existing job made no new job).
    lines: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
