"""Form engine: admin-defined custom fields per ticket type, as pure definitions and checks.

Public API: ``FieldDef``/``OptionDef``/``FormIn`` (admin models, ``schemas``),
``validate_create``/``validate_update``/``FieldErrors`` (ticket values, ``validate``) and
``FIELD_TYPES`` (the per-type validator table, ``fieldtypes``). The database edge lives in
``service``, ``repository`` and ``endpoints``.
"""

from .fieldtypes import FIELD_TYPES
from .schemas import FieldDef, FormIn, OptionDef
from .validate import FieldErrors, validate_create, validate_update

__all__ = ["FIELD_TYPES", "FieldDef", "FieldErrors", "FormIn", "OptionDef", "validate_create", "validate_update"]
