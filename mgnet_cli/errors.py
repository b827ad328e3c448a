"""Errors the user can fix: the command line prints their message on one line and exits with code 2."""


class MgnetError(Exception):
    """A problem with the user's input (config, data, files) rather than a bug in mgnet."""


class ConfigError(MgnetError):
    """A config value is invalid; the message names the key, the value and what is allowed."""


class DataError(MgnetError):
    """A data set is missing, corrupt or laid out wrongly; the message names the file and the fix."""
