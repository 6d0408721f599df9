"""The algebra of symbolic sizes (`--input 3xHxW`): `Expr` and its comparisons (sizes.py), the guards a
size-dependent comparison records (guards.py), reading sizes (forms.py). Torch-free, and it imports nothing
else of archc: it sits in the IR stage because a node's shape may hold such sizes, so resolve (`in_shape`
reads), the analysis walk and the solver (archc.analyze.symbolic) all import it from here."""

from archc.ir.algebra.forms import bounds, evaluate, piece, shape_key, smax, substitute, value_at
from archc.ir.algebra.guards import Guard, Guards, condition, guarding
from archc.ir.algebra.sizes import Expr, NotSymbolic, symbol

__all__ = ["Expr", "Guard", "Guards", "NotSymbolic", "symbol", "smax", "evaluate", "value_at", "guarding",
           "shape_key", "substitute", "bounds", "piece", "condition"]
