"""Failures of the tool's own infrastructure, as opposed to failures of one checkpoint.

Anything that goes wrong while one checkpoint is read, embedded or measured is that
checkpoint's recorded failure, and the others go on. Only a failure that no checkpoint can
get past stops a run: the work dir (or the results URL) cannot be written, the disk is
full, the evaluation data set cannot be read. Those raise :class:`InfrastructureError`,
whose message names the path and says why, so the run ends once with that message instead
of recording the same fault against every checkpoint.
"""

from __future__ import annotations

import errno


class InfrastructureError(Exception):
    """A failure that stops the whole run: not the fault of any one checkpoint."""


class WorkdirError(InfrastructureError):
    """The work dir or the results URL cannot be written (permissions, read-only, full)."""

    @classmethod
    def writing(cls, path: object, exc: BaseException, *, then: str = "The run stopped: this is not the fault of any checkpoint.") -> WorkdirError:
        """The error for a failed write at ``path``, with the reason and what to do.

        Args:
            path: where the write failed (a path or URL, already redacted).
            exc: the exception the write raised.
            then: the sentence that ends the message.

        Returns:
            The :class:`WorkdirError` (not raised).
        """
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else f"{type(exc).__name__}: {exc}"
        code = exc.errno if isinstance(exc, OSError) else None
        hint = {
            errno.ENOSPC: "free space there or pass another --workdir",
            errno.EDQUOT: "free space there or pass another --workdir",
            errno.EROFS: "the file system is read-only; pass a writable --workdir",
        }.get(code or 0, "make it writable or pass another --workdir / --results-url")
        return cls(f"cannot write {path} ({reason}); {hint}. {then}")


class DataSetError(InfrastructureError):
    """The evaluation data set cannot be read: every checkpoint would fail the same way."""


def is_transient(exc: BaseException) -> bool:
    """Whether a checkpoint's failure may go away without its file changing (I/O, memory, device errors).

    Such a checkpoint is retried on every scan. Anything else a file does (bad content, a
    factory raising TypeError, ...) happens again for the same bytes and is retried only once
    the file changes.

    Args:
        exc: the exception that failed the checkpoint.

    Returns:
        True for OSError, MemoryError, TimeoutError and RuntimeError (but not RecursionError,
        NotImplementedError or torch's LinAlgError).
    """
    if isinstance(exc, (RecursionError, NotImplementedError)):  # RuntimeErrors that the bytes decide
        return False
    if type(exc).__name__ in ("LinAlgError", "_LinAlgError"):  # torch.linalg's (a RuntimeError): the numbers decide
        return False
    return isinstance(exc, (OSError, MemoryError, RuntimeError, TimeoutError))
