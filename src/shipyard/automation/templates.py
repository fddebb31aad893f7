"""Templated action arguments: ``{{ event.payload.version }}`` rendered in Jinja2's sandbox.

The sandbox refuses attribute access to internals (``__class__``…), so a rule's author cannot run
code; what a template sees is plain data: ``event`` (the event's fields), ``payload``, ``context``
(the looked-up entities, see ``engine.py``), ``rule`` (name, version) and ``results`` (the results
of this firing's earlier actions, by index), plus one function, ``latest(dataset)``, giving the ref of
a dataset's newest version. A value that is exactly one ``{{ expression }}`` keeps its type (a number
stays a number); anything else renders to text. Undefined names are errors, not empty strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from shipyard.core.errors import InvalidInput

_ONE = re.compile(r"^\s*\{\{(.*)\}\}\s*$", re.DOTALL)
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def render(value: Any, variables: Mapping[str, Any], field: str = "args") -> Any:
    """Render every string in ``value`` (nested in lists and mappings)."""
    if isinstance(value, str):
        return _render_string(value, variables, field)
    if isinstance(value, list):
        return [render(v, variables, f"{field}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {k: render(v, variables, f"{field}.{k}") for k, v in value.items()}
    return value


def _render_string(text: str, variables: Mapping[str, Any], field: str) -> Any:
    if "{{" not in text and "{%" not in text:
        return text
    try:
        one = _ONE.match(text)
        if one and "}}" not in one.group(1) and "{{" not in one.group(1):
            result = _env.compile_expression(one.group(1).strip(), undefined_to_none=False)(**variables)
            if isinstance(result, StrictUndefined):
                str(result)  # raises UndefinedError with the name
            return result
        return _env.from_string(text).render(**variables)
    except TemplateError as exc:
        raise InvalidInput(f"{field}: template {text!r}: {exc}", field=field) from None
    except Exception as exc:  # a filter or comparison on the wrong type, inside the sandbox
        raise InvalidInput(f"{field}: template {text!r}: {type(exc).__name__}: {exc}", field=field) from None


def check(value: Any, field: str) -> None:
    """Compile-time check of every template in ``value`` (at save time: a syntax error is a 4xx)."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            try:
                _env.parse(value)
            except TemplateError as exc:
                raise InvalidInput(f"{field}: template {value!r}: {exc}", field=field) from None
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check(v, f"{field}[{i}]")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            check(v, f"{field}.{k}")
