"""The algebra of symbolic sizes, as the analysis walk, the solver and resolve use it: `Expr` and its
comparisons (sizes.py), guards (guards.py), reading sizes (forms.py). Import it from here or from those
modules, not from the package ``archc.analyze.symbolic``, whose solver imports the analysis walk."""

from archc.analyze.symbolic.forms import bounds, evaluate, piece, shape_key, smax, substitute, value_at
from archc.analyze.symbolic.guards import Guard, Guards, condition, guarding
from archc.analyze.symbolic.sizes import Expr, NotSymbolic, symbol

__all__ = ["Expr", "Guard", "Guards", "NotSymbolic", "symbol", "smax", "evaluate", "value_at", "guarding",
           "shape_key", "substitute", "bounds", "piece", "condition"]
