"""Compile each template string once per render.

Copier renders every path part of every template file (about a thousand strings for this
template, most of them repeated: "src", "tests", the conditional folder names) and compiles each
from scratch. Compiled Jinja templates are immutable, so the same source can be rendered with
any context: caching them by source halves the time of `copier copy`.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from jinja2 import Environment, Template
from jinja2.ext import Extension


class TemplateCache(Extension):
    """Memoises `Environment.from_string` for plain calls (no extra globals or class)."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        compiled: dict[str, Template] = {}
        uncached = environment.from_string

        def from_string(
            source: Any,
            globals: MutableMapping[str, Any] | None = None,
            template_class: type[Template] | None = None,
        ) -> Template:
            if globals is not None or template_class is not None or not isinstance(source, str):
                return uncached(source, globals, template_class)
            if source not in compiled:
                compiled[source] = uncached(source)
            else:
                # Extensions reset per-template state while preprocessing (Copier's {% yield %}
                # does): run that step as a compile would.
                environment.preprocess(source)
            return compiled[source]

        environment.from_string = from_string  # type: ignore[method-assign]
