"""Layers: nn.Module classes with weights or structure (category "layers"), one module per family.

Importing a family registers its entries. The order here is the catalog's registration order
(CATALOG iterates in it, and the importers' lookup tables are built from it), so a new family
goes where its entries should appear.
"""

from __future__ import annotations

# isort: off
from . import dense, conv, norm, sequence, attention, shape_layers  # noqa: F401  (registers)
# isort: on
