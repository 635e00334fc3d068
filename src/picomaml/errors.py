"""User-facing errors.

Anything a user can cause (bad file, bad key, missing data) raises
:class:`PicomamlError` with a message naming the file, line or key and what was
expected. The CLI prints such errors without a traceback; everything else is a bug.
"""


class PicomamlError(Exception):
    """An error caused by input the user controls, with a message that says how to fix it."""
