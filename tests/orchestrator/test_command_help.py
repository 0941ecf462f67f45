"""Every option and argument of every management command of the project says what it is for."""

from django.apps import apps
from django.core.management import get_commands, load_command_class

PROJECT_APPS = {"orchestrator", "actions", "audit", "core"}


class RecordingParser:
    """Stands in for the parser a command fills: records each add_argument call."""

    def __init__(self) -> None:
        self.arguments: list[tuple[tuple, dict]] = []

    def add_argument(self, *names, **options) -> None:
        self.arguments.append((names, options))

    def add_mutually_exclusive_group(self, **options) -> "RecordingParser":
        return self

    def add_argument_group(self, *args, **options) -> "RecordingParser":
        return self


def project_commands() -> dict[str, str]:
    """{command name: app module} for the commands our apps define."""
    app_names = {app.label: app.name for app in apps.get_app_configs()}
    return {
        name: app
        for name, app in get_commands().items()
        if app in PROJECT_APPS or app_names.get(app, app) in PROJECT_APPS
    }


def test_the_project_commands_are_found():
    commands = project_commands()
    for name in ("create_api_key", "list_api_keys", "revoke_api_key", "archive_audit"):
        assert name in commands


def test_every_argument_of_every_project_command_has_help_text():
    missing = []
    for name, app in sorted(project_commands().items()):
        command = load_command_class(app, name)
        assert command.help, f"{name} has no help"
        parser = RecordingParser()
        command.add_arguments(parser)
        missing += [
            f"{name} {'/'.join(names)}"
            for names, options in parser.arguments
            if not str(options.get("help") or "").strip()
        ]
    assert missing == []
