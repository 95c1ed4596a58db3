"""JSON logs, as a log shipper reads them."""
import json
import subprocess
import sys


def test_json_logs_are_one_object_per_line_with_the_correlation_ids():
    script = ("import logging; from observability import logs; logs.configure('INFO', 'json');"
              "logs.job_id.set('j-1'); logging.getLogger('x').info('hello %s', 'world')")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    line = json.loads(result.stderr.strip())
    assert line["message"] == "hello world" and line["job_id"] == "j-1" and line["level"] == "INFO"
