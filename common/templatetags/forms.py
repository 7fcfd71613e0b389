"""``{% form_fields form %}``: a form's fields with labels and inline errors.

The same markup as a template loop, built in Python: a Django template loop with an
include per page cost most of a form page's rendering time.
"""

from __future__ import annotations

from django import forms, template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


def _field(field: forms.BoundField) -> str:
    parts: list[str] = [format_html('<div class="field{}">', " has-error" if field.errors else "")]
    if getattr(field.field.widget, "input_type", None) == "radio":
        radios = format_html_join(
            "",
            '<label class="radio">{} {}</label>',
            ((radio.tag(), radio.choice_label) for radio in field),
        )
        parts.append(format_html("<fieldset><legend>{}</legend>{}</fieldset>", field.label, radios))
    else:
        parts.append(format_html('<label for="{}">{}</label>', field.id_for_label, field.label))
        parts.append(str(field))
    if field.help_text:
        parts.append(format_html('<small class="help">{}</small>', field.help_text))
    parts.extend(
        format_html('<p class="error" id="{}-error">{}</p>', field.id_for_label, error)
        for error in field.errors
    )
    parts.append("</div>")
    return "".join(parts)


@register.simple_tag
def form_fields(form: forms.BaseForm) -> SafeString:
    out: list[str] = []
    errors = form.non_field_errors()
    if errors:
        out.append('<div class="errors" role="alert">')
        out.extend(format_html("<p>{}</p>", e) for e in errors)
        out.append("</div>")
    out.extend(_field(field) for field in form)
    # Every piece above is escaped by format_html or is a widget's own safe HTML.
    return mark_safe("".join(out))  # noqa: S308
