"""Campaign templates: Jinja2 in a sandbox, checked once at creation, rendered for each
recipient by preview and by the ``send_email`` task alike (``render``).

A template is user code run in our processes, so besides the sandbox (no attribute of
Python's internals, no unsafe call) everything it can grow is bounded: loop steps and
calls (``MAX_STEPS``), the size of any one value an operator, call or filter makes, the
total output (``MAX_OUTPUT_CHARS``, counting text captured by ``set`` blocks and macros)
and the wall-clock time (``MAX_RENDER_SECONDS``). Past a bound, ``RenderError``.

Variables, lowest precedence first: the campaign's ``template_variables``, the
recipient's own fields, then the built-ins ``email``, ``name`` and ``unsubscribe_url``.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from html.parser import HTMLParser
from typing import Any, Final, Literal

import msgspec
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, meta, nodes
from jinja2.runtime import markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from taskflow.errors import TaskFlowError
from taskflow.events.campaign import CampaignRecipient

MAX_SUBJECT_CHARS: Final = 255  # campaigns.template_subject is VARCHAR(255)
MAX_TEMPLATE_CHARS: Final = 100_000
MAX_OUTPUT_CHARS: Final = 1024 * 1024
MAX_STEPS: Final = 200_000
MAX_RENDER_SECONDS: Final = 0.5
BUILT_INS: Final = frozenset({"email", "name", "unsubscribe_url"})
# Distinct sets of recipient fields rendered as a probe at creation.
MAX_PROBES: Final = 20

Part = Literal["subject", "html", "text"]
FIELD_OF: Final[dict[Part, str]] = {"subject": "template_subject", "html": "template_body", "text": "template_text"}


class CampaignTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """A campaign's templates, as the campaign hash's ``template`` field holds them
    (JSON): ``subject``, ``body`` (HTML), ``text`` (None: generated from the HTML) and
    ``variables``."""

    subject: str
    body: str
    text: str | None = None
    variables: dict[str, str] = {}


class RenderedMessage(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    html: str
    text: str


class TemplateRefused(TaskFlowError):
    """Raised at campaign creation for a template that cannot be accepted (syntax, access
    to internals, an unknown variable, or a probe render that failed). ``field`` is the
    request field (``template_body``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RenderError(TaskFlowError):
    """Raised when rendering stops: a sandbox refusal, a missing variable, a bound
    exceeded, any error the template's own code raised. ``part`` says which template."""

    def __init__(self, part: Part, message: str) -> None:
        super().__init__(f"{part}: {message}")
        self.part: Part = part
        self.message = message


class _Exceeded(TaskFlowError):
    """Raised inside a render when a bound is passed; becomes a RenderError."""


class _Budget:
    """What one render may still spend. A ContextVar holds it: renders in threads or
    tasks never share one."""

    def __init__(self) -> None:
        self.steps = 0
        self.output = 0
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise _Exceeded(f"more than {MAX_STEPS} loop steps and calls")
        if self.steps % 512 < n and time.monotonic() > self.deadline:
            raise _Exceeded(f"rendering took more than {MAX_RENDER_SECONDS} s")

    def emit(self, chars: int) -> None:
        self.output += chars
        if self.output > MAX_OUTPUT_CHARS:
            raise _Exceeded(f"output larger than {MAX_OUTPUT_CHARS} characters")
        self.step()


_budget: contextvars.ContextVar[_Budget] = contextvars.ContextVar("template_budget")


def _spend() -> _Budget:
    budget = _budget.get(None)
    if budget is None:  # compile-time constant folding: bounded by the sizes alone
        budget = _Budget()
    return budget


def _check_size(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
        raise _Exceeded(f"a number argument above {MAX_OUTPUT_CHARS} (output size bound)")


def _checked_args(args: Iterable[object], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        _check_size(value)


def _check_format(pattern: object) -> None:
    """A format string whose width alone would make a huge value (``'%999999999s'``,
    ``'{:>999999999}'``), refused before Python allocates it."""
    if isinstance(pattern, str) and (_WIDE_FORMAT.search(pattern) or _WIDE_BRACES.search(pattern)):
        raise _Exceeded("a format width above 6 digits or given by argument")


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend().step()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend().step()
        _checked_args(args, kwargs)
        # str.format and format_map, which the sandbox hands out wrapped.
        _check_format(getattr(getattr(__obj, "__wrapped__", __obj), "__self__", None))
        return super().call(__context, __obj, *args, **kwargs)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuse, before Python computes it, an operation whose result would be huge."""
    numbers = isinstance(left, int | float) and isinstance(right, int | float)
    if operator == "**" and numbers and abs(left) > 1 and right * math.log2(abs(left)) > 4096:
        raise _Exceeded("a power above 2**4096")
    sequences = str | list | tuple  # type: ignore[type-arg]
    if operator == "*" and any(
        isinstance(seq, sequences) and isinstance(times, int) and len(seq) * times > MAX_OUTPUT_CHARS
        for seq, times in ((left, right), (right, left))
    ):
        raise _Exceeded(f"a repetition longer than {MAX_OUTPUT_CHARS}")
    both = isinstance(left, sequences) and isinstance(right, sequences)
    if operator == "+" and both and len(left) + len(right) > MAX_OUTPUT_CHARS:
        raise _Exceeded(f"a value longer than {MAX_OUTPUT_CHARS}")
    if operator == "%":
        _check_format(left)


_WIDE_FORMAT = re.compile(r"%[-#0 +]*(\*|\d{7,})")
_WIDE_BRACES = re.compile(r"\{[^}]*(\d{7,}|\{)")


def _bounded_filter(f: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(f)  # keeps jinja_pass_arg, so context-taking filters still get it
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _spend().step()
        _checked_args(args[1:], kwargs)
        if f.__name__ == "do_format" and args:
            _check_format(args[0])
        return f(*args, **kwargs)

    return bounded


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    budget = _spend()
    for item in iterable:
        budget.step()
        yield item


def _data(text: str) -> Markup:
    """The template's own text, counted as output wherever it lands."""
    _spend().emit(len(text))
    return Markup(text)


def _concat(*parts: Any) -> Any:
    if sum(len(str(p)) for p in parts) > MAX_OUTPUT_CHARS:
        raise _Exceeded(f"a value longer than {MAX_OUTPUT_CHARS}")
    return markup_join(parts)


def _finalize(value: Any) -> Any:
    """Every ``{{ expression }}`` output, counted (in blocks and macros too)."""
    _spend().emit(len(str(value)))
    return value


_HOOKS: Final = {"_tf_iter": _bounded_iter, "_tf_data": _data, "_tf_concat": _concat}


class _Bounded(NodeTransformer):
    """Rewrites a parsed template so loops, joins and literal text pass the budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _hook("_tf_iter", [node.iter], node.lineno)  # type: ignore[list-item]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _hook("_tf_concat", node.nodes, node.lineno)

    def visit_TemplateData(self, node: nodes.TemplateData) -> nodes.Node:
        return _hook("_tf_data", [nodes.Const(node.data, lineno=node.lineno)], node.lineno)


def _hook(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    # (Called with the children Jinja typed as Node: they are expressions.)
    return nodes.Call(nodes.Name(name, "load", lineno=lineno), args, [], None, None, lineno=lineno)


def _environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(autoescape=autoescape, undefined=StrictUndefined, finalize=_finalize, keep_trailing_newline=True)
    env.filters = {name: _bounded_filter(f) for name, f in env.filters.items()}
    env.globals.update(_HOOKS)
    return env


_ENVIRONMENTS: Final = {True: _environment(True), False: _environment(False)}
_KNOWN_GLOBALS: Final = frozenset(_ENVIRONMENTS[True].globals)
# Attributes no template needs and each a step towards the interpreter's internals.
_INTERNAL_NAMES: Final = frozenset({"mro", "format_map", "gi_frame", "gi_code", "cr_frame", "f_globals", "f_locals"})


@functools.lru_cache(maxsize=256)
def _compiled(source: str, autoescape: bool) -> Any:
    """The template, parsed, rewritten with the bounds and compiled (cached: the send
    task renders the same few templates for every recipient)."""
    env = _ENVIRONMENTS[autoescape]
    return env.from_string(_Bounded().visit(env.parse(source)))


def render(template: CampaignTemplate, recipient: CampaignRecipient, unsubscribe_url: str) -> RenderedMessage:
    """The message for one recipient. The subject is one header line (line breaks become
    spaces, whatever a variable held); the HTML is autoescaped; the text part is
    ``template.text`` rendered, or the rendered HTML as plain text. Raises
    ``RenderError``."""
    context = {**template.variables, **recipient.fields}
    context.update(email=recipient.email, name=recipient.name, unsubscribe_url=unsubscribe_url)
    subject = " ".join(_render_part("subject", template.subject, False, context).split())
    body = _render_part("html", template.body, True, context)
    text = _render_part("text", template.text, False, context) if template.text is not None else html_to_text(body)
    return RenderedMessage(subject=subject, html=body, text=text)


def _render_part(part: Part, source: str, autoescape: bool, context: dict[str, str]) -> str:
    token = _budget.set(_Budget())
    try:
        return str(_compiled(source, autoescape).render(context))
    # What user code in a sandbox can raise: Jinja's own errors (sandbox refusals,
    # undefined variables), our bounds, and what Python raises for the operations it may
    # do (arithmetic, types, lookups, deep macro recursion).
    except (TemplateError, _Exceeded, ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as e:
        raise RenderError(part, f"{type(e).__name__}: {e}") from e
    finally:
        _budget.reset(token)


def refuse_unsafe(template: CampaignTemplate, recipients: Sequence[CampaignRecipient]) -> None:
    """Raise ``TemplateRefused`` unless each template parses, stays out of Python's
    internals, uses only known variables (campaign variables, built-ins, or fields
    EVERY recipient has) and renders within the bounds for a recipient of each distinct
    set of fields."""
    common = frozenset.intersection(*(frozenset(r.fields) for r in recipients)) if recipients else frozenset()
    known = BUILT_INS | common | frozenset(template.variables) | _KNOWN_GLOBALS
    for part, source, autoescape in _parts(template):
        _check_source(FIELD_OF[part], source, autoescape, known)
    probes: dict[frozenset[str], CampaignRecipient] = {}
    for r in recipients:
        probes.setdefault(frozenset(r.fields), r)
        if len(probes) >= MAX_PROBES:
            break
    for recipient in probes.values() or [CampaignRecipient(recipient_id="", email="probe@example.com")]:
        try:
            render(template, recipient, "https://example.com/unsubscribe/probe")
        except RenderError as e:
            raise TemplateRefused(FIELD_OF[e.part], f"rendering for {recipient.email} failed: {e.message}") from e


def _parts(template: CampaignTemplate) -> list[tuple[Part, str, bool]]:
    parts: list[tuple[Part, str, bool]] = [("subject", template.subject, False), ("html", template.body, True)]
    if template.text is not None:
        parts.append(("text", template.text, False))
    return parts


def _check_source(field: str, source: str, autoescape: bool, known: frozenset[str]) -> None:
    limit = MAX_SUBJECT_CHARS if field == "template_subject" else MAX_TEMPLATE_CHARS
    if len(source) > limit:
        raise TemplateRefused(field, f"{len(source)} characters; at most {limit}")
    if "\x00" in source:
        raise TemplateRefused(field, "contains a NUL character, which cannot be stored")
    env = _ENVIRONMENTS[autoescape]
    try:
        parsed = env.parse(source)
    except TemplateSyntaxError as e:
        raise TemplateRefused(field, f"syntax error on line {e.lineno}: {e.message}") from e
    for node in parsed.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else _const_key(node)  # type: ignore[arg-type]
        if name is not None and (name.startswith("_") or name in _INTERNAL_NAMES):
            raise TemplateRefused(field, f"reaches Python internals ({name!r} on line {node.lineno})")
    unknown = meta.find_undeclared_variables(parsed) - known
    if unknown:
        raise TemplateRefused(
            field,
            f"uses {', '.join(sorted(unknown))}: neither a template variable, a built-in "
            f"({', '.join(sorted(BUILT_INS))}) nor a field every recipient has",
        )
    try:
        _compiled(source, autoescape)
    except (TemplateError, _Exceeded, ArithmeticError, TypeError, ValueError, RecursionError) as e:
        raise TemplateRefused(field, f"does not compile: {e}") from e


def _const_key(node: nodes.Getitem) -> str | None:
    return node.arg.value if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) else None


_BLOCKS: Final = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
_HIDDEN: Final = frozenset({"script", "style", "head", "title"})


class _TextOf(HTMLParser):
    """HTML as the plain text of a ``text/plain`` part: paragraphs and breaks as line
    breaks, links as ``text (url)``, scripts and styles dropped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._hidden = 0
        self._links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        elif tag in _BLOCKS:
            self.out.append("\n")
        if tag == "li":
            self.out.append("- ")
        if tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.out)))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCKS and tag != "br":
            self.out.append("\n")
        if tag == "a" and self._links:
            href, start = self._links.pop()
            shown = "".join(self.out[start:]).strip()
            if href and href != shown and not href.startswith("#"):
                self.out.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(markup: str) -> str:
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    lines = [line.strip() for line in "".join(parser.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
