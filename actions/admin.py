from django.contrib import admin

from actions.models import Task
from orchestrator.admin import ReadOnlyAdmin


@admin.register(Task)
class TaskAdmin(ReadOnlyAdmin):
    list_display = ["id", "workspace", "title", "priority", "due", "assignee", "created_at"]
    list_filter = ["priority", "workspace"]
    list_select_related = ["workspace"]
