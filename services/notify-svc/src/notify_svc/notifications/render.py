"""Rendering notification templates, safely, and choosing their language. Pure functions.

Templates are written by admins but filled with what customers wrote (subjects, names), and the
result is mailed out automatically, so a template must be unable to do three things:

- **reach anything but the documented variables** (``catalogue.VARIABLES``): rendering runs in
  jinja2's ``ImmutableSandboxedEnvironment`` with attribute access limited to the keys of the
  plain dicts we pass (no Python attribute at all: ``{{ ''.__class__ }}`` is refused), no globals
  (no ``range``, ``cycler``, ``namespace``...), and a short list of filters;
- **send a broken message**: undefined names fail (``StrictUndefined``), and a save is checked
  statically (every name and field in every branch, not only the branch the sample takes) and
  then rendered with the sample: any failure is a 422 naming the field and the line;
- **grow without bound or run long**: the node types a template may contain are listed
  (``ALLOWED_NODES``: output, conditions, comparisons, filters, concatenation) — no loops, no
  ``set``/``with`` (doubling a variable thirty times is a gigabyte), no calls, no ``*``, ``%``
  or ``**``, no ``{% autoescape false %}`` — so a render costs at most the template's size times
  the values' size; the source is bounded by the request schema and the output is bounded here.

HTML bodies are autoescaped: a customer's ``<script>`` subject arrives as text. The rendered HTML
then passes the shared allow-list (``helpdesk_common.html_sanitize``, with the e-mail ``style``
properties and https images allowed), so neither a template's own markup (an admin's
``<script>``, ``onerror``, ``javascript:`` link) nor a value the escaping could not cover reaches a
recipient or the preview. Subjects are made one line after rendering
(``helpdesk_common.text.one_line``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, nodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.sandbox import ImmutableSandboxedEnvironment

from helpdesk_common.html_sanitize import EMAIL_STYLE_PROPERTIES, mail_image_source, sanitize_html
from helpdesk_common.text import one_line

from .catalogue import BUILTIN, BUILTIN_LANGUAGES, REPLY_HINTS, SAMPLE, VARIABLES, Template

#: the parts of a template, in the order they are checked (and the request body's field names)
PARTS = ("subject", "body_text", "body_html")
#: characters a rendered part may have (a subject is one line; bodies are mail-sized)
OUTPUT_LIMITS = {"subject": 998, "body_text": 65_536, "body_html": 262_144}

#: how deep expressions and blocks may nest (Python's compiler allows 200 parentheses)
MAX_DEPTH = 60
ALLOWED_FILTERS = ("default", "d", "upper", "lower", "title", "capitalize", "trim", "truncate", "escape", "e",
                   "length", "count", "wordcount", "first", "last", "striptags", "string", "int", "round", "abs")
ALLOWED_NODES: tuple[type[nodes.Node], ...] = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Const, nodes.Name, nodes.Getattr, nodes.Getitem,
    nodes.If, nodes.CondExpr, nodes.And, nodes.Or, nodes.Not, nodes.Compare, nodes.Operand, nodes.Filter,
    nodes.Test, nodes.Concat, nodes.Add, nodes.Sub, nodes.Neg, nodes.Pos, nodes.Keyword, nodes.Tuple, nodes.List,
)
_NODE_NAMES = {
    nodes.For: "loops ({% for %})", nodes.Assign: "{% set %}", nodes.AssignBlock: "{% set %}",
    nodes.With: "{% with %}", nodes.Macro: "macros", nodes.CallBlock: "{% call %}", nodes.Call: "calls",
    nodes.Include: "{% include %}", nodes.Import: "{% import %}", nodes.FromImport: "{% import %}",
    nodes.Extends: "{% extends %}", nodes.Block: "{% block %}", nodes.Mul: "'*'", nodes.Pow: "'**'",
    nodes.Mod: "'%'", nodes.Div: "'/'", nodes.FloorDiv: "'//'", nodes.Slice: "slices",
    nodes.ScopedEvalContextModifier: "{% autoescape %}", nodes.EvalContextModifier: "{% autoescape %}",
    nodes.FilterBlock: "{% filter %}", nodes.Dict: "dict literals", nodes.Scope: "{% autoescape %}",
}


class _Sandbox(ImmutableSandboxedEnvironment):
    """Only dict keys are reachable: ``ticket.number`` and ``ticket['number']`` read our dicts;
    any attribute of any object (``''.__class__``, ``ticket.items``) is unsafe."""

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return False

    def getattr(self, obj: Any, attribute: str) -> Any:
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, Mapping) and isinstance(argument, str):
            if argument in obj:
                return obj[argument]
            return self.undefined(obj=obj, name=argument)
        return self.unsafe_undefined(obj, str(argument))


def _environment(*, autoescape: bool) -> _Sandbox:
    env = _Sandbox(undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True,
                   finalize=lambda value: "" if value is None else value)
    env.globals.clear()
    env.filters = {name: DEFAULT_FILTERS[name] for name in ALLOWED_FILTERS}
    env.tests = dict(DEFAULT_TESTS)
    return env


_TEXT_ENV = _environment(autoescape=False)
_HTML_ENV = _environment(autoescape=True)


def _env(part: str) -> _Sandbox:
    return _HTML_ENV if part == "body_html" else _TEXT_ENV


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    part: str
    line: int | None
    message: str

    def as_error(self) -> dict[str, str]:
        where = f"line {self.line}: " if self.line else ""
        return {"field": f"body.{self.part}", "message": where + self.message, "code": "template_error"}


class RenderError(Exception):
    def __init__(self, problems: Sequence[TemplateProblem]) -> None:
        super().__init__("; ".join(f"{p.part} line {p.line}: {p.message}" for p in problems))
        self.problems = list(problems)


def _static_problems(part: str, tree: nodes.Template) -> list[TemplateProblem]:
    """Every use of a name or field outside ``VARIABLES`` and every node type outside
    ``ALLOWED_NODES``, in every branch."""
    found: list[TemplateProblem] = []

    def refuse(node: nodes.Node, message: str) -> None:
        found.append(TemplateProblem(part, getattr(node, "lineno", None), message))

    def field_of(node: nodes.Node) -> tuple[nodes.Node, str] | None:
        if isinstance(node, nodes.Getattr):
            return node.node, node.attr
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            return node.node, node.arg.value
        return None

    def visit(node: nodes.Node, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise RecursionError
        if not isinstance(node, ALLOWED_NODES):
            what = next((name for kind, name in _NODE_NAMES.items() if isinstance(node, kind)), type(node).__name__)
            refuse(node, f"{what}: not allowed in notification templates")
            return
        if isinstance(node, nodes.Name):
            if node.name not in VARIABLES:
                refuse(node, f"{node.name!r} is undefined (variables: {', '.join(sorted(VARIABLES))})")
            return
        if isinstance(node, (nodes.Getattr, nodes.Getitem)):
            field = field_of(node)
            base = field[0] if field else None
            if field is None or not isinstance(base, nodes.Name):
                refuse(node, "only the fields of the documented variables can be read (e.g. ticket.number)")
                return
            if base.name not in VARIABLES:
                refuse(base, f"{base.name!r} is undefined (variables: {', '.join(sorted(VARIABLES))})")
                return
            fields = VARIABLES[base.name]
            if fields is None or field[1] not in fields:
                known = ", ".join(sorted(fields)) if fields else "none"
                refuse(node, f"{base.name!r} has no field {field[1]!r} (fields: {known})")
            return
        for child in node.iter_child_nodes():
            visit(child, depth + 1)

    visit(tree)
    return found


def check_source(part: str, source: str) -> list[TemplateProblem]:
    """Problems of one part's source: syntax, disallowed constructs, unknown names, fields,
    filters or tests. Empty when it may be saved (it is then rendered with the sample too)."""
    return list(_checked(part, source))


@lru_cache(maxsize=512)
def _checked(part: str, source: str) -> tuple[TemplateProblem, ...]:
    try:
        return tuple(_check(part, source))
    except (RecursionError, SyntaxError, MemoryError):  # ((((...)))) or |upper|upper|... hundreds deep
        return (TemplateProblem(part, None, f"the template is nested too deeply (at most {MAX_DEPTH} levels)"),)


def _check(part: str, source: str) -> list[TemplateProblem]:
    env = _env(part)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(part, exc.lineno, exc.message or "syntax error")]
    problems = _static_problems(part, tree)
    if problems:
        return problems
    try:
        _compiled(part, source)  # unknown filters and tests are found when compiling
    except TemplateSyntaxError as exc:  # TemplateAssertionError is one
        return [TemplateProblem(part, exc.lineno, exc.message or "invalid template")]
    return []


@lru_cache(maxsize=512)
def _compiled(part: str, source: str) -> Any:
    """Compiling costs far more than rendering: each stored template is compiled once per process."""
    return _env(part).from_string(source)


_LINE = re.compile(r'line (\d+)')


def _line_of(exc: BaseException) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if lineno:
        return int(lineno)
    tb = exc.__traceback__
    line = None
    while tb is not None:  # the template's frame carries the template line (jinja rewrites it)
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_part(part: str, source: str, context: Mapping[str, Any]) -> str:
    """One part, rendered with ``context``; raises RenderError (never a partial result)."""
    problems = check_source(part, source)
    if problems:
        raise RenderError(problems)
    limit = OUTPUT_LIMITS[part]
    pieces: list[str] = []
    size = 0
    try:
        for piece in _compiled(part, source).generate(dict(context)):
            size += len(piece)
            if size > limit:
                raise RenderError([TemplateProblem(part, None, f"the result is longer than {limit} characters")])
            pieces.append(piece)
    except RenderError:
        raise
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        raise RenderError([TemplateProblem(part, _line_of(exc), message)]) from None
    text = "".join(pieces)
    if part == "subject":
        text = one_line(text)
        if not text:
            raise RenderError([TemplateProblem(part, None, "the subject renders empty")])
    return text


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str | None


def render(template: Template, context: Mapping[str, Any]) -> Rendered:
    """All parts; every part's problems are collected before raising. An empty HTML source means
    a text-only message."""
    out: dict[str, str] = {}
    problems: list[TemplateProblem] = []
    for part in PARTS:
        source = getattr(template, part)
        if part == "body_html" and not source.strip():
            continue
        try:
            out[part] = render_part(part, source, context)
        except RenderError as exc:
            problems.extend(exc.problems)
    if problems:
        raise RenderError(problems)
    html = out.get("body_html")
    if html is not None:
        html = sanitize_html(html, image_source=notification_image_source, styles=EMAIL_STYLE_PROPERTIES) or ""
    return Rendered(subject=out["subject"], body_text=out["body_text"], body_html=html)


def notification_image_source(src: str) -> bool:
    """A notification's images: https URLs (a logo) and the mail policy's inline ones."""
    src = src.strip()
    return (src[:8].lower() == "https://" and len(src) <= 2048) or mail_image_source(src)


def validate(template: Template, *, language: str = "en") -> list[TemplateProblem]:
    """What a save checks: every part statically, then rendered with the sample."""
    try:
        render(template, sample_context(language=language))
    except RenderError as exc:
        return exc.problems
    return []


def sample_context(overrides: Mapping[str, Any] | None = None, *, language: str = "en") -> dict[str, Any]:
    """The sample in ``language``, with the caller's values laid over it (the preview's ``sample``)."""
    context = {name: (dict(value) if isinstance(value, Mapping) else value) for name, value in SAMPLE.items()}
    context["language"] = language
    context["reply_hint"] = reply_hint("email", language)
    for name, value in (overrides or {}).items():
        if isinstance(value, Mapping) and isinstance(context.get(name), dict):
            context[name].update(value)
        else:
            context[name] = value
    return context


# ---- languages -----------------------------------------------------------------------------------

def normalise_language(tag: str | None) -> str | None:
    """``zh_cn`` -> ``zh-CN``, ``EN-us`` -> ``en-US``, ``zh-hans-cn`` -> ``zh-Hans-CN``; None for
    nothing usable. Case per BCP 47's conventions, so lookups can be exact."""
    if not tag:
        return None
    parts = [p for p in tag.strip().replace("_", "-").split("-") if p]
    if not parts or not parts[0].isalpha() or not 2 <= len(parts[0]) <= 3:
        return None
    out = [parts[0].lower()]
    for p in parts[1:]:
        if len(p) == 2 and p.isalpha():
            out.append(p.upper())
        elif len(p) == 4 and p.isalpha():
            out.append(p.title())
        else:
            out.append(p.lower())
    return "-".join(out)


def _candidates(tag: str | None) -> list[str]:
    """``zh-Hans-CN`` -> [zh-Hans-CN, zh-Hans, zh]: the tag and its shorter prefixes."""
    norm = normalise_language(tag)
    if norm is None:
        return []
    parts = norm.split("-")
    return ["-".join(parts[:i]) for i in range(len(parts), 0, -1)]


def choose_language(wanted: str | None, available: Sequence[str], default: str | None) -> str | None:
    """The template language for a message: the customer's language, else the tenant default,
    else ``en``, else any. Each is matched exactly, then by prefix (``zh-TW`` finds ``zh``),
    then by primary language (``zh`` or ``zh-TW`` finds ``zh-CN`` when that is all there is)."""
    by_norm = {normalise_language(a): a for a in available}
    by_norm.pop(None, None)
    if not by_norm:
        return None
    for preferred in (wanted, default, "en"):
        candidates = _candidates(preferred)
        for candidate in candidates:
            if candidate in by_norm:
                return by_norm[candidate]
        if candidates:
            primary = candidates[-1]
            same = sorted(a for a in by_norm if a.split("-")[0] == primary)
            # several regional variants of one language: the built-in one first (zh-CN for zh)
            for builtin in BUILTIN_LANGUAGES:
                if builtin in same:
                    return by_norm[builtin]
            if same:
                return by_norm[same[0]]
    return by_norm[sorted(by_norm)[0]]


def reply_hint(channel: str | None, language: str) -> str:
    kind = "email" if channel in (None, "email", "web", "api", "phone") else "chat"
    primary = "zh-CN" if language.lower().startswith("zh") else "en"
    return REPLY_HINTS[(kind, primary)]


def builtin(key: str, language: str) -> Template | None:
    return BUILTIN.get((key, language))
