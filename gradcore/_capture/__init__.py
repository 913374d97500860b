"""Capture and replay: ``gradcore.compile`` and ``gradcore.jit`` record a call's array program and replay it."""
from .compiler import CompiledCallable, OptimizedModule, compile

__all__ = ["compile", "CompiledCallable", "OptimizedModule"]
