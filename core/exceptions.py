"""The base of every error a service raises: a stable code and the HTTP status it maps to."""


class OrchestratorError(Exception):
    """Base of the errors services raise; the API renders them in the one error format."""

    code = "error"
    status = 400
    # The rate-limit check the request already passed, if any: its headers go on the answer.
    rate_limit = None

    def __init__(self, message: str, *, fields: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
