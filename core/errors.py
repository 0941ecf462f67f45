"""The one error format: {"error": {"status", "code", "message", "fields"}}."""


def error_body(status: int, code: str, message: str, fields: dict | None = None) -> dict:
    """The body of every error response this service sends."""
    return {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}
