"""Admin roles as Django groups: what an auditor, a reviewer and an operator may do in the admin.

Every role views everything the admin shows; deciding on actions and redelivering webhooks are
permissions of their own, held by no one unless granted here (superusers hold every permission).
A role's group is rewritten to exactly the permissions below each time a role is granted, so
running `manage.py grant_admin_role` again repairs a group edited by hand.
"""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction

# The apps whose tables the admin shows; their view_* permissions make up every role.
VIEWED_APPS = ("orchestrator", "audit", "actions")


@dataclass(frozen=True)
class Role:
    group: str
    description: str
    # "app_label.codename", on top of every view permission.
    permissions: tuple[str, ...] = ()


ROLES = {
    "auditor": Role("auditors", "views everything, decides nothing"),
    "reviewer": Role(
        "reviewers",
        "views everything, approves and rejects pending actions",
        ("audit.decide_action",),
    ),
    "operator": Role(
        "operators", "views everything, redelivers webhooks", ("orchestrator.redeliver_webhook",)
    ),
}


class RoleError(Exception):
    """An unknown role or user: nothing was changed."""


def ensure_role_group(role: str) -> Group:
    """The role's group, created if missing, holding exactly the role's permissions."""
    spec = _role(role)
    group, _ = Group.objects.get_or_create(name=spec.group)
    group.permissions.set(role_permissions(role))
    return group


def role_permissions(role: str) -> list[Permission]:
    """Every view permission of the admin's apps, and the role's own permissions."""
    spec = _role(role)
    views = Permission.objects.filter(
        content_type__app_label__in=VIEWED_APPS, codename__startswith="view_"
    )
    extra = []
    for name in spec.permissions:
        app_label, codename = name.split(".", 1)
        found = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
        if not found.exists():
            raise RoleError(f"permission {name} does not exist yet: run `manage.py migrate`")
        extra.extend(found)
    return [*views, *extra]


def grant_role(*, role: str, usernames: list[str]) -> Group:
    """Put the users in the role's group and make them staff (the admin admits staff only)."""
    with transaction.atomic():
        group = ensure_role_group(role)
        for user in _users(usernames):
            user.groups.add(group)
            if not user.is_staff:
                user.is_staff = True
                user.save(update_fields=["is_staff"])
    return group


def revoke_role(*, role: str, usernames: list[str]) -> Group:
    """Take the users out of the role's group; they stay staff, with their other groups."""
    with transaction.atomic():
        group = ensure_role_group(role)
        for user in _users(usernames):
            user.groups.remove(group)
    return group


def _role(role: str) -> Role:
    try:
        return ROLES[role]
    except KeyError:
        raise RoleError(f"unknown role {role!r}; roles are {', '.join(ROLES)}") from None


def _users(usernames: list[str]) -> list:
    model = get_user_model()
    users = list(model.objects.filter(**{f"{model.USERNAME_FIELD}__in": usernames}))
    missing = sorted(set(usernames) - {user.get_username() for user in users})
    if missing:
        raise RoleError(f"no such user: {', '.join(missing)}")
    return users
