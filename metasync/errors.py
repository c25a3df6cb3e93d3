"""The exceptions metasync raises for run-level problems.

Per-asset problems never raise: they become rows (quarantine, conflict, failure) in the plan and the audit.
Each exception maps to one CLI exit code.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path


class ExitCode(int, Enum):
    OK = 0
    PARTIAL = 1
    USAGE = 2
    UNREACHABLE = 3


class MetasyncError(Exception):
    """Root of every error metasync raises on purpose."""

    exit_code: ExitCode = ExitCode.UNREACHABLE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.audit_dir: Path | None = None  # the failed run's audit folder, once it is written

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class ConfigError(MetasyncError):
    """The configuration or the command line is wrong; nothing was written."""

    exit_code = ExitCode.USAGE


class RuleError(ConfigError):
    """A transformation rule cannot be compiled (unknown column, bad regex, impossible cast)."""

    def __init__(self, message: str, *, index: int, kind: str, hint: str | None = None) -> None:
        sentence = message if message.endswith((".", "?", "!")) else message + "."
        super().__init__(f"rules[{index}] ({kind}): {sentence}", hint=hint)
        self.index = index
        self.kind = kind


class SourceError(MetasyncError):
    """The source could not be read (missing path, invalid JSON, unreachable tenant)."""

    exit_code = ExitCode.UNREACHABLE


class ConnectorAuthError(SourceError):
    """Credentials were refused by a connector."""


class TargetError(MetasyncError):
    """The target could not be read or reached."""

    exit_code = ExitCode.UNREACHABLE


class Terminated(KeyboardInterrupt):
    """The process was asked to stop (SIGTERM, as a service manager or container runtime stops it). Raised like
    Ctrl-C's KeyboardInterrupt, so a run stopped this way writes its audit too; the CLI exits with 143."""
