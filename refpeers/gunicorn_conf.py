"""gunicorn settings for the reference peers: one worker, many threads, no access log.

    gunicorn -c python:refpeers.gunicorn_conf -b 127.0.0.1:8090 "refpeers:create_app()"

Why a config of its own: without `-c`, gunicorn loads ./gunicorn.conf.py from the
working directory, which in this repo is the API's (an access log line per
request, several workers). Workers stay at 1 because the peers' state is in memory.
"""
bind = "127.0.0.1:8090"
workers = 1
worker_class = "gthread"
threads = 32
accesslog = None
keepalive = 5
timeout = 60
control_socket_disable = True  # several gunicorns on one machine would share ~/.gunicorn/gunicorn.ctl
