"""A strict stand-in for nvidia-ml-py (``pynvml``) whose names are the real module's.

nvidia-ml-py installs and imports without a GPU or driver (only ``nvmlInit`` needs the driver), so its
names are read from the real module:

- a subclass may only define ``nvml*`` methods the real module has (checked when the class is made);
- a name the real module lacks raises AttributeError, as the real module would;
- a real function the stand-in does not implement raises the real ``NVMLError`` with ``missing`` (default
  NVML_ERROR_FUNCTION_NOT_FOUND: a driver without that symbol); constants and error classes are the real ones.
"""

from __future__ import annotations

import pynvml as real


def nvml_error(code: int) -> Exception:
    """The real binding's exception for an nvmlReturn_t ``code`` (e.g. NVMLError_NotSupported)."""
    return real.NVMLError(code)


class StrictNvml:
    """Base of the NVML stand-ins; see the module docstring."""

    missing = real.NVML_ERROR_FUNCTION_NOT_FOUND

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        unknown = sorted(n for n in vars(cls) if n.startswith("nvml") and not hasattr(real, n))
        if unknown:
            raise TypeError(f"{cls.__name__} defines {unknown}, which nvidia-ml-py does not have")

    def __getattr__(self, name: str):
        if not hasattr(real, name):
            raise AttributeError(f"module 'pynvml' has no attribute {name!r}")
        value = getattr(real, name)
        if name.startswith("nvml") and callable(value):
            code = self.missing

            def not_here(*args, **kwargs):
                raise nvml_error(code)
            return not_here
        return value
