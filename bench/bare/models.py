from django.db import models


class Request(models.Model):
    client_request_id = models.CharField(max_length=128, unique=True)
    prompt = models.TextField()
    status = models.CharField(max_length=16, default="queued")
    output = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return self.client_request_id
