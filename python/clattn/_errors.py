"""clattn.Error: a failed library call, carrying the status's name and the library's message
(which argument, which value)."""
from ._library import lib


class Error(Exception):
    """A status other than success: `status` (the number), `name` ("CLATTN_STATUS_INVALID_WINDOW",
    or OpenCL's "CL_OUT_OF_RESOURCES") and `message` (the library's detail, may be empty)."""

    def __init__(self, status, message=""):
        self.status = status
        self.name = lib.clattn_status_name(status).decode()
        self.message = message
        detail = message or lib.clattn_status_string(status).decode()
        super().__init__(f"{self.name}: {detail}")


# clattn's own statuses by name, read from the library (they sit in 1001..1099): the package
# raises the library's status for what it checks itself before a call (shapes, dilation 0).
STATUS = {
    name: value
    for value in range(1001, 1100)
    if (name := lib.clattn_status_name(value).decode()) != "CLATTN_STATUS_UNKNOWN"
}


def fail(name, message):
    """Error with the status `name` ("SHAPE_MISMATCH"), raised by the package itself."""
    return Error(STATUS["CLATTN_STATUS_" + name], message)


def check(status, context_handle=None):
    """Raises Error for a failed call; the message is the context's (None: this thread's last
    failed context creation)."""
    if status:
        raise Error(status, lib.clattn_context_message(context_handle).decode(errors="replace"))
