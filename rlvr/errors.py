"""rlvr's errors. Each message names what was wrong, the value, and how to fix it."""


class RlvrError(Exception):
    """Base class of every error rlvr raises on purpose."""


class DataError(RlvrError):
    """An input file or row is missing, unreadable or malformed."""


class ConfigError(RlvrError, ValueError):
    """A configuration value is invalid."""
