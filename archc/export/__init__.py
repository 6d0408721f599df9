"""Stage 8: export a compiled model (ONNX, TorchScript, torch.export, or a plain Python file)."""

from archc.export.exporters import FORMATS, export
from archc.export.python_source import python_source

__all__ = ["FORMATS", "export", "python_source"]
