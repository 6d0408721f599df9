"""The block library: one file per primitive, all reached through the registry."""

from archc.blocks.base import REQUIRED, Args, Block, Param, Shape
from archc.blocks.registry import get, is_registered, names, register

__all__ = ["REQUIRED", "Args", "Block", "Param", "Shape", "get", "is_registered", "names", "register"]
