"""An unexpected exception becomes a JSON 500 without a traceback."""
from flask import Flask

from web import errors


def test_an_unexpected_error_is_a_json_500():
    app = Flask(__name__)
    errors.init_app(app)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret detail")

    response = app.test_client().get("/boom")

    assert response.status_code == 500
    assert response.get_json() == {"code": 500, "status": "Internal Server Error",
                                   "message": "Internal error; it has been logged"}
    assert b"secret detail" not in response.data
