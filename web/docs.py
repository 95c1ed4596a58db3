"""Swagger UI's assets served by the service itself, so /docs works with no internet."""
from flask import Blueprint, send_from_directory
from swagger_ui_bundle import swagger_ui_path

ASSETS_URL = "/docs/assets/"

blp = Blueprint("docs_assets", __name__)


@blp.route(f"{ASSETS_URL}<path:filename>")
def asset(filename):
    """One file of the bundled Swagger UI."""
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)
