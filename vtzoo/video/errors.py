"""The one error type video input raises for a video it cannot read."""

from __future__ import annotations

from vtzoo.errors import InputError


class VideoDecodeError(InputError):
    """A video (file, bytes or decoded frames) that cannot be read as asked.

    ``source`` names the input (a path, ``"<bytes>"`` or ``"<array>"``); ``causes`` maps each
    backend that was tried to the reason it failed, so a fallback failure shows both.
    """

    def __init__(self, source: str, reason: str, causes: dict[str, str] | None = None):
        self.source = source
        self.reason = reason
        self.causes = dict(causes or {})
        message = f"cannot read video {source}: {reason}"
        if self.causes:
            tried = "; ".join(f"{name}: {cause}" for name, cause in self.causes.items())
            message += f" (backends tried -> {tried})"
        VtzooError_init = super(InputError, self).__init__  # the message already names the source
        VtzooError_init(message)
