"""The service's tables as SQLAlchemy 2.0 models, importable without Flask or Celery."""
from models.base import Base
from models.db import Database
from models.events import JobEvent
from models.imports import Import
from models.inventory import InventoryMove, StockWrite
from models.jobs import Job
from models.orders import Order, OrderItem
from models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription

__all__ = ["Base", "Database", "Import", "InventoryMove", "Job", "JobEvent", "Order", "OrderItem", "StockWrite", "WebhookAttempt", "WebhookDelivery",
           "WebhookSubscription"]
