"""How the OpenAPI document describes ``msgspec.Raw``: already-encoded JSON of any shape.

Task arguments, results and log metadata pass through the gateway as ``msgspec.Raw`` (never
decoded and re-encoded), so their schema is "any JSON value". Litestar has no schema for
``Raw``, and its Struct plugin hashes every field default, which fails on the Raw defaults
of events (``args: Raw = Raw(b"[]")``) with ``TypeError: unhashable type: 'msgspec.Raw'``;
the second plugin here handles those Structs, showing a Raw default as the JSON it holds
(a null one as no default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec
from litestar.openapi.spec import Schema
from litestar.plugins import OpenAPISchemaPlugin
from litestar.plugins.core._msgspec import kwarg_definition_from_field
from litestar.types.empty import Empty
from litestar.typing import FieldDefinition

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator

ANY_JSON = "any JSON value"


class RawJSONSchemaPlugin(OpenAPISchemaPlugin):
    """``msgspec.Raw`` is any JSON value: a schema without a type, described as such.

    (So a response field that may be null is a Raw holding ``null``, not ``Raw | None``, whose
    ``oneOf`` of "anything" and null would match null twice, which ``oneOf`` forbids.)
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return field_definition.annotation is msgspec.Raw

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        return Schema(description=ANY_JSON)


class RawDefaultStructSchemaPlugin(OpenAPISchemaPlugin):
    """Structs with a ``msgspec.Raw`` default, which Litestar's own Struct plugin cannot take.

    The same schema Litestar's plugin builds (``litestar/_openapi/schema_generation/plugins/
    struct.py``), except that defaults are compared by identity rather than hashed.
    """

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        if field_definition.is_union or not field_definition.is_subclass_of(msgspec.Struct):
            return False
        return any(isinstance(field.default, msgspec.Raw) for field in _struct_info(field_definition).fields)

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        info = _struct_info(field_definition)
        type_hints = field_definition.get_type_hints(include_extras=True, resolve_generics=True)
        properties: dict[str, FieldDefinition] = {}
        for field in info.fields:
            extra: dict[str, Any] = {}
            if kwarg_definition := kwarg_definition_from_field(field)[0]:
                extra["kwarg_definition"] = kwarg_definition
            properties[field.encode_name] = FieldDefinition.from_annotation(
                annotation=type_hints[field.name], name=field.encode_name, default=_default_of(field), **extra
            )
        required = [field.encode_name for field in info.fields if field.required]
        if info.tag_field:
            # The tag is no annotated field; a Literal makes it a const, as Litestar does.
            properties[info.tag_field] = FieldDefinition.from_annotation(Literal[info.tag])
            required.append(info.tag_field)
        return schema_creator.create_component_schema(
            field_definition, required=sorted(required), property_fields=properties
        )


def _default_of(field: msgspec.inspect.Field) -> Any:
    if field.default is msgspec.NODEFAULT or field.default is msgspec.UNSET:
        return Empty
    if isinstance(field.default, msgspec.Raw):
        return msgspec.json.decode(field.default)
    return field.default


def _struct_info(field_definition: FieldDefinition) -> msgspec.inspect.StructType:
    info = msgspec.inspect.type_info(field_definition.type_)
    assert isinstance(info, msgspec.inspect.StructType)
    return info
