"""Stage 2: check the loaded spec against the shipped JSON Schema (Draft 2020-12)."""

from archc.schema.validate import SCHEMA_PATH, schema_text, validate

__all__ = ["SCHEMA_PATH", "schema_text", "validate"]
