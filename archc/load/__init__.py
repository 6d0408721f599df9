"""Stage 1: YAML text -> plain Python data that remembers where every value came from."""

from archc.load.yaml_loader import LocDict, LocList, load_file, load_text, loc_of

__all__ = ["LocDict", "LocList", "load_file", "load_text", "loc_of"]
