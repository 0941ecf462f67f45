"""A small typed client of the AI Orchestrator API, on httpx.

client = OrchestratorClient("https://orchestrator.example.com", api_key)
job = client.submit(prompt="Plan my week", actions=["task.create"])
job = client.wait(job["id"])
"""

from orchestrator_client.client import ApiError, OrchestratorClient, Page, verify_webhook

__all__ = ["ApiError", "OrchestratorClient", "Page", "verify_webhook"]
