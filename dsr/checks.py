"""System check: no model holding personal data escapes the registry (ACC-6)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from dsr.purposes import PURPOSES
from dsr.registry import PersonalData, registry


def _user_linked_models() -> set[type[models.Model]]:
    """Models with a foreign key to the user model, directly or through a chain."""
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    concrete = [m for m in apps.get_models() if not m._meta.auto_created and not m._meta.proxy]
    linked: set[type[models.Model]] = {user_model}
    changed = True
    while changed:
        changed = False
        for model in concrete:
            if model in linked:
                continue
            for f in model._meta.get_fields():
                if (
                    f.is_relation
                    and (f.many_to_one or f.one_to_one)
                    and f.concrete
                    and f.related_model in linked
                ):
                    linked.add(model)
                    changed = True
                    break
    return linked


def _has_personal_field(model: type[models.Model]) -> bool:
    return any(getattr(f, "personal_data", False) for f in model._meta.get_fields())


def _path_exists(model: type[models.Model], path: str) -> bool:
    current: Any = model
    for part in path.split("__"):
        try:
            f = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        current = f.related_model if f.is_relation else None
        if current is None and part != path.split("__")[-1]:
            return False
    return True


def _entry_errors(entry: PersonalData) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    names = set(entry.fields) | set(entry.export_fields) | set(entry.file_fields)
    for rule in entry.rules:
        if "__" in rule.clock:
            if not _path_exists(entry.model, rule.clock):
                errors.append(
                    checks.Error(
                        f"{entry.label} retention clock '{rule.clock}' is not a valid path.",
                        obj=entry.model,
                        id="dsr.E002",
                    )
                )
        else:
            names.add(rule.clock)
        names |= set(rule.anonymise)
    erasure_fields = getattr(entry.erasure, "values", None) or {}
    names |= set(erasure_fields)
    names |= set(getattr(entry.erasure, "keep_fields", ()))
    for name in sorted(names):
        try:
            entry.model._meta.get_field(name)
        except FieldDoesNotExist:
            errors.append(
                checks.Error(
                    f"{entry.label} declares field '{name}', which does not exist.",
                    hint="Update the model's declaration in its app's privacy.py.",
                    obj=entry.model,
                    id="dsr.E002",
                )
            )
    for path in filter(None, [entry.subject, entry.subject_email]):
        if not _path_exists(entry.model, path):
            errors.append(
                checks.Error(
                    f"{entry.label} declares the subject path '{path}', which does not resolve.",
                    obj=entry.model,
                    id="dsr.E003",
                )
            )
    if entry.purpose not in PURPOSES:
        errors.append(
            checks.Error(
                f"{entry.label} declares an unknown purpose '{entry.purpose}'.",
                hint=f"Known purposes: {', '.join(sorted(PURPOSES))}.",
                obj=entry.model,
                id="dsr.E004",
            )
        )
    return errors


@checks.register(checks.Tags.models)
def check_personal_data_registry(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for model in sorted(
        _user_linked_models() | {m for m in apps.get_models() if _has_personal_field(m)},
        key=lambda m: m._meta.label,
    ):
        if not registry.is_declared(model._meta.label):
            errors.append(
                checks.Error(
                    f"{model._meta.label} holds personal data (it links to a user or has a field "
                    "marked personal) but is not declared in the personal-data registry.",
                    hint="Declare it with registry.register(PersonalData(...)) in its app's "
                    "privacy.py, or registry.exempt(label, reason).",
                    obj=model,
                    id="dsr.E001",
                )
            )
    for entry in registry:
        errors.extend(_entry_errors(entry))
    return errors
