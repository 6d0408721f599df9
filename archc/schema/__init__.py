"""Stage 2: check the loaded spec against the shipped JSON Schema (Draft 2020-12)."""

from archc.schema.validate import RESERVED_KEYS, SCHEMA_PATH, schema_text, validate

__all__ = ["RESERVED_KEYS", "SCHEMA_PATH", "schema_text", "validate"]
