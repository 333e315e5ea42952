"""Form fields of the admin: JSON edited as text, refused when jsonb would refuse it."""

from __future__ import annotations

import json
import math
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class PrettyJSONFormField(forms.JSONField):
    """JSON edited as indented text; anything PostgreSQL's jsonb would reject is a form error.

    Python's json module accepts ``NaN``/``Infinity``, numbers too large for a double
    (``1e999`` becomes infinity), ``\\u0000`` and lone surrogates, all of which
    PostgreSQL refuses (a DataError, i.e. a server error, at save time); and nesting
    thousands deep exhausts Python's recursion (and PostgreSQL's stack) first. Nesting
    is limited to :data:`MAX_DEPTH` levels, checked before parsing.
    """

    default_error_messages = {
        "invalid": _("Enter valid JSON (check quotes, commas and brackets)."),
        "unsupported": "%(reason)s",
    }

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, list | dict | int | float | bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValidationError(
                    self.error_messages["unsupported"],
                    code="unsupported",
                    params={"reason": gettext("JSON numbers must be finite.")},
                )
            return value
        if _nesting_depth(value) > MAX_DEPTH:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={
                    "reason": gettext("JSON may be nested at most %(depth)s levels deep.")
                    % {"depth": MAX_DEPTH}
                },
            )
        try:
            converted = json.loads(
                value,
                cls=self.decoder,
                parse_constant=_reject_constant,
                parse_float=_finite_float,
            )
        except NonFiniteNumber as exc:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={"reason": str(exc)},
            ) from None
        except (json.JSONDecodeError, ValueError, RecursionError):
            raise ValidationError(
                self.error_messages["invalid"], code="invalid", params={"value": value}
            ) from None
        self._check_storable(converted)
        return converted

    def _check_storable(self, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False, cls=self.encoder)
        if "\\u0000" in text:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={
                    "reason": gettext("JSON text may not contain the NUL character (\\u0000).")
                },
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                self.error_messages["unsupported"],
                code="unsupported",
                params={"reason": gettext("JSON text contains an invalid unicode escape.")},
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        # Redisplay refused input as typed: re-encoding it (NUL, a lone surrogate)
        # would fail while rendering the error page.
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return self.to_python(data)
        except ValidationError:
            return InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


MAX_DEPTH = 100


class NonFiniteNumber(ValueError):
    pass


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise NonFiniteNumber(
            gettext("The number %(number)s is too large to store (jsonb numbers are finite).")
            % {"number": text[:40]}
        )
    return number


def _nesting_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class JSONTextarea(forms.Textarea):
    def __init__(self, attrs: dict | None = None) -> None:
        super().__init__(
            {
                "class": "vLargeTextField portal-json",
                "rows": 12,
                "spellcheck": "false",
                **(attrs or {}),
            }
        )
