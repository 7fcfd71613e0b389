"""Staff roles are groups with exactly the permissions declared in accounts/roles.py."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts import roles

pytestmark = pytest.mark.django_db


def _perms(group: Group) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


def test_the_three_role_groups_exist():
    names = set(Group.objects.values_list("name", flat=True))
    assert {roles.SUPPORT, roles.RETOUCHER, roles.PRIVACY_OFFICER} <= names
    assert (roles.SUPPORT, roles.RETOUCHER, roles.PRIVACY_OFFICER) == (
        "Support",
        "Retoucher",
        "Privacy officer",
    )


@pytest.mark.parametrize("role", list(roles.ROLE_PERMISSIONS))
def test_each_role_has_its_declared_permissions(role):
    group = Group.objects.get(name=role)
    assert set(roles.ROLE_PERMISSIONS[role]) <= _perms(group)


@pytest.mark.parametrize("role", [roles.SUPPORT, roles.PRIVACY_OFFICER])
def test_account_permissions_are_exactly_the_declared_ones(role):
    declared = {p for p in roles.ROLE_PERMISSIONS[role] if p.startswith(("accounts.", "axes."))}
    actual = {
        p for p in _perms(Group.objects.get(name=role)) if p.startswith(("accounts.", "axes."))
    }
    assert actual == declared


def test_no_role_may_delete_people_or_alter_the_audit_log():
    forbidden = {
        "accounts.delete_user",
        "accounts.add_user",
        "accounts.add_auditevent",
        "accounts.change_auditevent",
        "accounts.delete_auditevent",
        "auth.change_group",
        "auth.change_permission",
        "auth.add_permission",
    }
    for role in roles.ROLE_PERMISSIONS:
        assert not _perms(Group.objects.get(name=role)) & forbidden, role


def test_only_the_privacy_officer_reads_the_audit_log():
    assert "accounts.view_auditevent" in _perms(Group.objects.get(name=roles.PRIVACY_OFFICER))
    assert "accounts.view_auditevent" not in _perms(Group.objects.get(name=roles.SUPPORT))
    assert "accounts.view_auditevent" not in _perms(Group.objects.get(name=roles.RETOUCHER))


def test_retoucher_gets_no_account_permissions():
    retoucher = Group.objects.get(name=roles.RETOUCHER)
    assert not {p for p in _perms(retoucher) if p.startswith("accounts.")}


def test_role_fixtures_carry_the_group_permissions(support, privacy_officer, retoucher):
    assert support.is_staff
    assert support.has_perm("accounts.change_user")
    assert not support.has_perm("accounts.view_auditevent")
    assert privacy_officer.has_perm("accounts.view_auditevent")
    assert not privacy_officer.has_perm("accounts.delete_user")
    assert not retoucher.has_perm("accounts.view_user")
