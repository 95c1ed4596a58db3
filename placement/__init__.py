"""Order placement: the steps that turn a job into an order, independent of Flask and Celery.

`execution.execute` is the entry point; `inventory` is the stock protocol.
"""
