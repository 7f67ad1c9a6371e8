"""The root of every error the monitor raises on purpose."""


class MonitorError(Exception):
    """Base class: every project exception derives from it and ends in Error."""
