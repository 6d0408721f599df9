"""The torch side of the block library: the modules and functions the builders construct beyond torch.nn
(`modules.py`) and the init methods a spec and a parameter node fill tensors with (`init.py`).

This package's own import is empty (no torch): the registry imports every module of archc.blocks to list the
blocks, and a builder imports what it constructs from the submodules, inside the builder."""
