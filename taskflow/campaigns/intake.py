"""A campaign's audience as given (JSON rows or a CSV file) -> the recipients to keep,
the rows refused and why, and how many were duplicates. Pure: no I/O, table-tested.

Row numbers are 1-based and count data rows only: in a CSV the header is not a row, so
``row 1`` is the line after it (whatever line breaks quoted cells hold); in JSON, row
``n`` is ``recipients[n - 1]``.

Whole-input problems (a file too large, too many rows, no ``email`` column, bytes that
are not UTF-8) raise ``IntakeRefused``; problems of one row reject that row only.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator

import msgspec
from email_validator import EmailNotValidError, validate_email

from taskflow.campaigns.ids import normalised, recipient_id
from taskflow.errors import TaskFlowError
from taskflow.events.campaign import CampaignRecipient

# The largest CSV upload read at all: 413 beyond.
MAX_FILE_BYTES = 10 * 1024 * 1024
# Recipients per campaign (accepted + rejected + duplicates): 422 beyond.
MAX_ROWS = 100_000
# Any one cell or field, in characters: the row is rejected beyond.
MAX_FIELD_CHARS = 1_000
# Personalisation columns per row (the CSV header, or a JSON row's ``fields``).
MAX_COLUMNS = 100
# What may head a column or name a field: a Jinja variable name, so templates can use it.
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# Characters that end or fold an email header line (CR, LF) or that no header may hold
# (other C0 controls, DEL, the Unicode line and paragraph separators). Tab is allowed.
_HEADER_BREAKING = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\u2028\u2029\x85]")
# PostgreSQL text refuses NUL (taskflow.storable); every field is stored.
_NUL = "\x00"
_NAME_RULE = "letters, digits and _, not starting with a digit"
BUILT_IN_FIELDS = frozenset({"email", "name"})


class IntakeRefused(TaskFlowError):
    """Raised when the recipients as a whole cannot be taken (too large, too many rows,
    no ``email`` column, not UTF-8 text). ``status`` is the HTTP answer: 413 for the
    file size, 422 otherwise; ``field`` is the request field to name."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


class RecipientRow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One recipient in a JSON body. ``email`` may be missing: that row is rejected
    (reported), not the whole request."""

    email: str | None = None
    name: str = ""
    # Personalisation, as the other columns of a CSV.
    fields: dict[str, str] = {}


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    row: int
    email: str
    reason: str


class Audience(msgspec.Struct, kw_only=True):
    """What intake kept: recipients in the order given, first occurrence of each address."""

    recipients: list[CampaignRecipient]
    rejected: list[Rejected]
    duplicates: int


class _Row(msgspec.Struct, frozen=True):
    number: int
    email: str | None
    name: str
    fields: dict[str, str]
    # Set when the row is malformed before any field is looked at (a missing cell).
    problem: str | None = None


def from_json(campaign_id: str, rows: list[RecipientRow]) -> Audience:
    if len(rows) > MAX_ROWS:
        raise IntakeRefused("recipients", f"{len(rows)} rows; at most {MAX_ROWS} are accepted")
    return _audience(campaign_id, (_Row(i, r.email, r.name, r.fields) for i, r in enumerate(rows, 1)))


def from_csv(campaign_id: str, data: bytes) -> Audience:
    """A CSV with a header: ``email`` (required), ``name``, any other column a field.
    UTF-8 with or without a BOM; ``,`` or ``;`` separated (as spreadsheets in locales
    with a decimal comma write it)."""
    if len(data) > MAX_FILE_BYTES:
        raise IntakeRefused("recipients", f"file of {len(data)} bytes; at most {MAX_FILE_BYTES} are accepted", 413)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise IntakeRefused("recipients", f"not UTF-8 text (byte {e.start})") from e
    if _NUL in text:
        raise IntakeRefused("recipients", "contains a NUL character, which cannot be stored")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_separator(text))
    try:
        header = next(reader, None)
        if header is None:
            raise IntakeRefused("recipients", "the CSV is empty; it needs a header with an email column")
        columns = _columns(header)
        return _audience(campaign_id, _csv_rows(reader, columns))
    except csv.Error as e:
        raise IntakeRefused("recipients", f"not a CSV file: {e}") from e


def _separator(text: str) -> str:
    first_line = text.split("\n", 1)[0]
    return ";" if first_line.count(";") > first_line.count(",") else ","


def _columns(header: list[str]) -> list[str]:
    columns = [c.strip() for c in header]
    if "email" not in columns:
        raise IntakeRefused("recipients", "the CSV has no email column (header: " + ", ".join(columns)[:200] + ")")
    named = [c for c in columns if c]
    if len(named) > MAX_COLUMNS:
        raise IntakeRefused("recipients", f"{len(named)} columns; at most {MAX_COLUMNS} are accepted")
    for c in named:
        if not _FIELD_NAME.match(c):
            raise IntakeRefused("recipients", f"column {c[:70]!r} is not a name a template can use ({_NAME_RULE})")
    if len(set(named)) != len(named):
        raise IntakeRefused("recipients", "a column name appears twice")
    return columns


def _csv_rows(reader: Iterator[list[str]], columns: list[str]) -> Iterator[_Row]:
    number = 0
    for cells in reader:
        if not cells:
            continue  # a blank line is no row
        number += 1
        if number > MAX_ROWS:
            raise IntakeRefused("recipients", f"more than {MAX_ROWS} rows; at most {MAX_ROWS} are accepted")
        problem = None
        if len(cells) < len(columns):
            problem = f"missing column: {columns[len(cells)]}"
        elif len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
            problem = f"{len(cells)} cells for {len(columns)} columns"
        values = dict(zip(columns, cells, strict=False))
        fields = {k: v for k, v in values.items() if k and k not in BUILT_IN_FIELDS}
        yield _Row(number, values.get("email"), values.get("name", ""), fields, problem)


def _audience(campaign_id: str, rows: Iterable[_Row]) -> Audience:
    recipients: list[CampaignRecipient] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    duplicates = 0
    for row in rows:
        email = (row.email or "").strip()
        reason = row.problem or _row_problem(row, email)
        if reason is not None:
            rejected.append(Rejected(row=row.number, email=_shown(row.email or ""), reason=reason))
            continue
        key = normalised(email)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        recipients.append(
            CampaignRecipient(
                recipient_id=recipient_id(campaign_id, email), email=email, name=row.name.strip(), fields=row.fields
            )
        )
    return Audience(recipients=recipients, rejected=rejected, duplicates=duplicates)


def _row_problem(row: _Row, email: str) -> str | None:
    """Why the row cannot be a recipient, or None. Checked in this order, so the reason
    given is the first that applies."""
    if row.email is None:
        return "missing column: email"
    if not email:
        return "missing email"
    for label, value in (("email", row.email), ("name", row.name)):
        if _HEADER_BREAKING.search(value):
            return f"header-breaking characters in {label}"
    return _fields_problem(row, email) or _address_problem(email)


def _fields_problem(row: _Row, email: str) -> str | None:
    if len(row.fields) > MAX_COLUMNS:
        return f"{len(row.fields)} fields; at most {MAX_COLUMNS}"
    for label, value in (("email", email), ("name", row.name), *row.fields.items()):
        if len(value) > MAX_FIELD_CHARS:
            return f"field too long: {label} ({len(value)} characters; at most {MAX_FIELD_CHARS})"
        if _NUL in value or _NUL in label:
            return f"NUL character in {label}"
    for label in row.fields:
        if not _FIELD_NAME.match(label) or label in BUILT_IN_FIELDS:
            return f"field name {label[:70]!r} is not a name a template can use ({_NAME_RULE})"
    return None


def _address_problem(email: str) -> str | None:
    try:
        # Syntax only (no DNS: intake must not wait on the network, nor leak who we mail).
        # Sending is ASCII only (no SMTPUTF8): a mailbox name that is not cannot be sent.
        valid = validate_email(email, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as e:
        return f"invalid address: {e}"
    if not email.isascii():
        return f"invalid address: the domain is not ASCII; give its ASCII form ({valid.ascii_email})"
    return None


def _shown(email: str) -> str:
    """The address as the response echoes it: bounded, and printable."""
    return _HEADER_BREAKING.sub(" ", email)[:320]
