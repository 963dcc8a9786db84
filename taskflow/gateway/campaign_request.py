"""``POST /api/v1/campaigns``'s body, JSON or multipart (a CSV of recipients), turned
into a checked ``NewCampaign`` and the intake report; and how OpenAPI shows both.

The route takes the raw request: one handler cannot declare two body types, so the
content type picks the parser here and ``CreateOperation`` documents both.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Request
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE, HTTP_415_UNSUPPORTED_MEDIA_TYPE

from taskflow.campaigns import intake, templates
from taskflow.campaigns.creation import NewCampaign
from taskflow.campaigns.intake import MAX_FIELD_CHARS, MAX_FILE_BYTES, MAX_ROWS, Audience, IntakeRefused, RecipientRow
from taskflow.campaigns.templates import MAX_SUBJECT_CHARS, MAX_TEMPLATE_CHARS, CampaignTemplate, TemplateRefused
from taskflow.gateway.errors import invalid
from taskflow.gateway.request_body import MAX_JSON_DEPTH, is_json_media_type, json_depth_exceeds
from taskflow.storable import NUL_REFUSED, nul_path

# The body read at all: the largest CSV plus the form's other fields.
MAX_REQUEST_BYTES = MAX_FILE_BYTES + 256 * 1024
MAX_RATE_PER_MINUTE = 100_000
# Rejected rows listed in a 422 when none was accepted.
_SHOWN_REJECTIONS = 20

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SUBJECT_CHARS)]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_TEMPLATE_CHARS)]
Variables = dict[Annotated[str, msgspec.Meta(max_length=64)], Annotated[str, msgspec.Meta(max_length=MAX_FIELD_CHARS)]]
Rate = Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE_PER_MINUTE)]
When = Annotated[datetime, msgspec.Meta(tz=True)]


class CampaignFields(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Everything but the recipients: the form fields of a multipart request."""

    name: Name
    template_subject: Subject
    template_body: Body
    template_text: Body | None = None
    template_variables: Variables = {}
    scheduled_at: When | None = None
    rate_limit_per_minute: Rate = 100


class CampaignCreate(CampaignFields, forbid_unknown_fields=True, kw_only=True):
    """A JSON request: the fields and the recipients as rows."""

    recipients: Annotated[list[RecipientRow], msgspec.Meta(max_length=MAX_ROWS)]


class Parsed(msgspec.Struct, frozen=True):
    campaign: NewCampaign
    audience: Audience


async def parse_create(request: Request[Any, Any, Any], owner: str, request_id: str) -> Parsed:
    """The request as a campaign; a 413, 415 or 422 (naming the field) otherwise."""
    content_type = request.headers.get("content-type", "")
    campaign_id = str(uuid.uuid4())
    if is_json_media_type(content_type):
        body = await _body(request)
        if json_depth_exceeds(body, MAX_JSON_DEPTH):
            raise invalid("body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        data = _decoded(lambda: msgspec.json.decode(body, type=CampaignCreate))
        fields: CampaignFields = data
        audience = await asyncio.to_thread(_intake, lambda: intake.from_json(campaign_id, data.recipients))
    elif content_type.lower().startswith("multipart/form-data"):
        fields, csv_bytes = await _form(request)
        audience = await asyncio.to_thread(_intake, lambda: intake.from_csv(campaign_id, csv_bytes))
    else:
        raise ClientException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="Content-Type must be application/json or multipart/form-data",
        )
    _refuse_nul(fields)
    template = CampaignTemplate(
        subject=fields.template_subject,
        body=fields.template_body,
        text=fields.template_text,
        variables=fields.template_variables,
    )
    if not audience.recipients:
        raise _nobody(audience)
    try:
        # CPU-bound (it renders a probe per set of fields): off the event loop.
        await asyncio.to_thread(templates.refuse_unsafe, template, audience.recipients)
    except TemplateRefused as e:
        raise invalid(e.field, e.message) from e
    campaign = NewCampaign(
        campaign_id=campaign_id,
        owner=owner,
        name=fields.name,
        template=template,
        scheduled_at=fields.scheduled_at,
        rate_limit_per_minute=fields.rate_limit_per_minute,
        recipients=audience.recipients,
        created_at=datetime.now(UTC),
        request_id=request_id,
        traceparent=request.headers.get("traceparent"),
    )
    return Parsed(campaign, audience)


async def _body(request: Request[Any, Any, Any]) -> bytes:
    try:
        return await request.body()
    except RequestEntityTooLarge:
        raise _too_large() from None


def _too_large() -> ClientException:
    return ClientException(
        status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        detail=f"body: larger than the limit of {MAX_REQUEST_BYTES} bytes (a CSV file: {MAX_FILE_BYTES} bytes)",
    )


async def _form(request: Request[Any, Any, Any]) -> tuple[CampaignFields, bytes]:
    try:
        form = await request.form()
    except RequestEntityTooLarge:
        raise _too_large() from None
    values: dict[str, Any] = {}
    upload: UploadFile | None = None
    for key, value in form.multi_items():
        if key == "recipients" and isinstance(value, UploadFile):
            upload = value
        elif key == "recipients":
            raise invalid("recipients", "must be a file (a CSV), not a text field")
        elif isinstance(value, str):
            values[key] = _form_value(key, value)
    if upload is None:
        raise invalid("recipients", "a CSV file is required (form field recipients)")
    data = await upload.read()
    fields = _decoded(lambda: msgspec.convert(values, CampaignFields, strict=False))
    return fields, data


def _form_value(key: str, value: str) -> object:
    """A form field as the JSON body would hold it."""
    if key == "template_variables":
        return _decoded(lambda: msgspec.json.decode(value or "{}"), field=key)
    if key == "scheduled_at" and not value:
        return None
    return value


def _decoded(decode: Any, field: str | None = None) -> Any:
    try:
        return decode()
    except msgspec.ValidationError as e:
        raise invalid(field or _path(str(e)), str(e)) from e
    except msgspec.DecodeError as e:
        raise invalid(field or "body", f"not valid JSON: {e}") from e


_PATH = re.compile(r"at `\$\.?([^`]*)`")


def _path(message: str) -> str:
    found = _PATH.search(message)
    return found.group(1) if found and found.group(1) else "body"


def _intake(parse: Any) -> Audience:
    try:
        audience: Audience = parse()
    except IntakeRefused as e:
        if e.status == HTTP_413_REQUEST_ENTITY_TOO_LARGE:
            raise ClientException(status_code=e.status, detail=str(e)) from e
        raise invalid(e.field, e.message) from e
    return audience


def _refuse_nul(fields: CampaignFields) -> None:
    for name in ("name", "template_variables"):
        if (path := nul_path(getattr(fields, name), name)) is not None:
            raise invalid(path, NUL_REFUSED)


def _nobody(audience: Audience) -> ClientException:
    error = invalid(
        "recipients",
        f"no recipient accepted ({len(audience.rejected)} rejected, {audience.duplicates} duplicates)",
    )
    assert isinstance(error.extra, list)
    error.extra += [
        {"key": f"recipients[row {r.row}]", "message": r.reason, "source": "body"}
        for r in audience.rejected[:_SHOWN_REJECTIONS]
    ]
    return error


def _string(max_length: int | None = None, **extra: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, max_length=max_length, **extra)


_COMMON = {
    "name": _string(255, min_length=1),
    "template_subject": _string(MAX_SUBJECT_CHARS, min_length=1, description="Jinja2; one header line"),
    "template_body": _string(MAX_TEMPLATE_CHARS, min_length=1, description="Jinja2 HTML, autoescaped"),
    "template_text": _string(MAX_TEMPLATE_CHARS, description="Jinja2 plain text; generated from the HTML if absent"),
    "scheduled_at": _string(format="date-time"),
    "rate_limit_per_minute": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_RATE_PER_MINUTE, default=100),
}
_VARIABLES = Schema(type=OpenAPIType.OBJECT, additional_properties=_string(MAX_FIELD_CHARS))
_RECIPIENT = Schema(
    type=OpenAPIType.OBJECT,
    properties={"email": _string(), "name": _string(), "fields": _VARIABLES},
    additional_properties=False,
)
_JSON_BODY = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        **_COMMON,
        "template_variables": _VARIABLES,
        "recipients": Schema(type=OpenAPIType.ARRAY, items=_RECIPIENT, max_items=MAX_ROWS),
    },
    required=["name", "template_subject", "template_body", "recipients"],
    additional_properties=False,
)
_FORM_BODY = Schema(
    type=OpenAPIType.OBJECT,
    properties={
        **_COMMON,
        "template_variables": _string(description="a JSON object of strings"),
        "recipients": _string(format="binary", description="CSV: email, name, other columns are fields"),
    },
    required=["name", "template_subject", "template_body", "recipients"],
)


@dataclass
class CreateOperation(Operation):
    """The create route's OpenAPI operation: a JSON body or a multipart form."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            required=True,
            content={
                "application/json": OpenAPIMediaType(schema=_JSON_BODY),
                "multipart/form-data": OpenAPIMediaType(schema=_FORM_BODY),
            },
        )
