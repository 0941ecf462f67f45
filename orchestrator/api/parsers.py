"""JSON parsing with the 256 KiB body bound enforced before the body is read."""

from django.conf import settings
from rest_framework.parsers import JSONParser

from orchestrator.exceptions import RequestTooLarge


class BoundedJSONParser(JSONParser):
    """DRF reads the raw stream, bypassing Django's DATA_UPLOAD_MAX_MEMORY_SIZE; check here."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.MAX_REQUEST_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge(f"The request body exceeds {limit // 1024} KiB.")
        return super().parse(stream, media_type, parser_context)
