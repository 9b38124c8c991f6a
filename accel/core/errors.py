"""The one error tree of accel.

Every error a user can cause (bad config, bad model, missing camera, unavailable backend) is an
``AccelError``: the CLI prints its message on one line and exits with its ``exit_code``. Anything else
reaching the user is a bug.

    AccelError
    ├── ConfigError      accel.toml, environment or CLI flags are wrong          (exit 2)
    │   ├── UnknownPluginError  no installed delegate / kernel set has that name
    │   └── OptionError         a plugin's option is unknown or has a wrong value (says which key)
    ├── ModelError       the model file is missing, corrupt or of an unknown family (exit 2)
    ├── SourceError      the frame source cannot be opened or read              (exit 2)
    ├── DatasetError     a dataset's annotations are missing, corrupt or name missing images (exit 2)
    ├── OutputError      the result cannot be written where asked (a folder, a device, no room) (exit 4)
    ├── DelegateError    a backend is unknown, unavailable or failed            (exit 3)
    ├── KernelError      a pre/post-processing kernel is unavailable or failed  (exit 3)
    └── PowerError       a power meter is unavailable or failed                 (exit 3)
"""

from __future__ import annotations


class AccelError(Exception):
    """Base of all errors accel reports to a user: one line, what is wrong and what to do."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(AccelError):
    """A config key, environment variable or CLI flag has a wrong name, type or value. The message is one line
    whatever the file held: characters that do not print (a newline in a key) are shown escaped."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


class UnknownPluginError(ConfigError):
    """A delegate or kernel-set name that no installed plugin has: the config names something wrong."""


class OptionError(ConfigError):
    """A plugin's option (a key of ``[delegates.NAME]`` or ``[kernels.NAME]``) is unknown or has a wrong
    value. ``where`` names it (``delegates.xnnpack.threads``), ``problem`` says what is wrong, and ``key`` is
    the option to point at in accel.toml (None: the table itself), so a caller can add the file and line."""

    def __init__(self, where: str, problem: str, key: str | None = None) -> None:
        super().__init__(f"{where}: {problem}")
        self.where, self.problem, self.key = where, problem, key


class ModelError(AccelError):
    """The model file is missing, not a TFLite flatbuffer, truncated, or of an unsupported family."""

    exit_code = 2


class SourceError(AccelError):
    """A frame source (image folder, video, camera) cannot be opened or read."""

    exit_code = 2


class DatasetError(AccelError):
    """A dataset (COCO instances JSON or YOLO data.yaml and labels) is missing, corrupt, or refers to missing
    images."""

    exit_code = 2


class OutputError(AccelError):
    """The result JSON or its folder cannot be written: the path is a folder, a device, a pipe or under a file,
    the folder is read-only, or the disk is full. Checked before anything is captured; a write that fails
    later keeps the last complete document."""

    exit_code = 4


class DelegateError(AccelError):
    """An inference backend is unknown, unavailable here, or failed while running."""

    exit_code = 3


class KernelError(AccelError):
    """A pre/post-processing kernel set is unknown, unavailable, or failed."""

    exit_code = 3


class PowerError(AccelError):
    """A power meter is unknown, unavailable, or failed."""

    exit_code = 3


def file_kind(mode: int) -> str:
    """What an ``os.stat`` mode is, as an error message names it: "a regular file", "a folder", "a character
    device", "a block device", "a named pipe", "a socket", else "a special file"."""
    import stat

    kinds = ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a special file")
