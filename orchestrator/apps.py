from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"
