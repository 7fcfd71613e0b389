"""Form widgets that render long choice lists without a template per option."""

from __future__ import annotations

import copy
from typing import Any

from django import forms
from django.forms.utils import flatatt
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

# (cache_key, language) -> (option values, their <option> markup, markup when selected)
_OPTIONS: dict[tuple[str, str | None], tuple[list[str], list[str], list[str]]] = {}


def _option_html(value: str, label: Any, selected: bool) -> str:
    mark = " selected" if selected else ""
    return f'<option value="{conditional_escape(value)}"{mark}>{conditional_escape(label)}</option>'


class FastSelect(forms.Select):
    """A single ``<select>`` with the stock markup, built with string joins.

    Django's Select renders each ``<option>`` through a template: about 12 ms for the
    ~250 countries and 6 ms for the ~180 currencies, most of the profile page's time.
    This produces the same HTML (attributes, first matching option selected) with
    string joins. With ``cache_key``, the choices are declared fixed for the life of the
    process (per language: labels may be translated), so the option markup is built once
    and a render only marks the selected option. Flat choices only (no optgroups, no
    ``multiple``); anything else falls back to the stock rendering.
    """

    def __init__(
        self,
        attrs: dict[str, Any] | None = None,
        choices: Any = (),
        *,
        cache_key: str | None = None,
    ) -> None:
        super().__init__(attrs, choices)
        self.cache_key = cache_key

    def _options(self) -> tuple[list[str], list[str], list[str]] | None:
        key = (self.cache_key, get_language()) if self.cache_key else None
        if key is not None and key in _OPTIONS:
            return _OPTIONS[key]
        values: list[str] = []
        plain: list[str] = []
        chosen: list[str] = []
        for option_value, label in self.choices:
            if isinstance(label, list | tuple):
                return None  # optgroups: leave them to the stock template
            text = "" if option_value is None else str(option_value)
            values.append(text)
            plain.append(_option_html(text, label, selected=False))
            chosen.append(_option_html(text, label, selected=True))
        if key is not None:
            _OPTIONS[key] = (values, plain, chosen)
        return values, plain, chosen

    def use_required_attribute(self, initial: Any) -> bool:
        # The stock check iterates (and so re-sorts, for countries) every choice.
        options = None if self.allow_multiple_selected else self._options()
        if options is None:
            return super().use_required_attribute(initial)
        return not self.is_hidden and bool(options[0]) and options[0][0] == ""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: Any = None,
    ) -> SafeString:
        options = None if self.allow_multiple_selected else self._options()
        if options is None:
            return super().render(name, value, attrs, renderer)
        values, plain, chosen = options
        wanted = set(self.format_value(value))
        parts = list(plain)
        for index, text in enumerate(values):
            if text in wanted:
                parts[index] = chosen[index]
                break
        final_attrs = self.build_attrs(self.attrs, attrs)
        head = format_html('<select name="{}"{}>', name, flatatt(final_attrs))
        # Every value and label was escaped in _option_html.
        return mark_safe(f"{head}{''.join(parts)}</select>")  # noqa: S308


class FixedChoiceField(forms.TypedChoiceField):
    """A choice field whose long, never-changing choice list is shared, not deep-copied.

    Every form instance deep-copies its fields; for ~250 countries and ~180 currencies
    that copy alone was tens of thousands of calls per profile page.
    """

    def __deepcopy__(self, memo: dict[int, Any]) -> FixedChoiceField:
        result = copy.copy(self)
        memo[id(self)] = result
        result.widget = copy.deepcopy(self.widget, memo)
        result.error_messages = self.error_messages.copy()
        result.validators = self.validators[:]
        return result
