from celery import shared_task
from django.utils import timezone
from openai import OpenAI

from bench.bare.models import Request

# The SDK reads OPENAI_BASE_URL and OPENAI_API_KEY; one client per process, shared by threads.
_client = OpenAI()


@shared_task
def complete(request_id: int, prompt: str) -> None:
    """One chat completion, one UPDATE."""
    started = timezone.now()
    response = _client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": prompt}],
        max_tokens=800,
    )
    Request.objects.filter(pk=request_id).update(
        status="done",
        output=response.choices[0].message.content or "",
        started_at=started,
        finished_at=timezone.now(),
    )
