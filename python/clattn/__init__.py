"""clattn: transformer attention (dense, causal, sliding window, global, summary and extra keys,
padding, grouped-query heads, 2-D grid patterns) on any OpenCL device, over the bundled C library.
See SPEC.md for what each pattern computes."""
from ._attention import attention
from ._context import Context, Device, devices
from ._errors import Error
from ._library import lib as _lib

__version__ = _lib.clattn_version().decode()
__all__ = ["attention", "devices", "Context", "Device", "Error", "__version__"]
