"""Logging for the CLI: one stderr handler, each record printed once."""

import logging


class _NotPrintedYet(logging.Filter):
    """Drop records a library's own stderr handler has printed already.

    huggingface_hub (set up by transformers) gives its logger a stderr handler and lets records
    propagate too, so under a root handler each of its lines came out twice.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        logger = logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            if any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
                   and record.levelno >= h.level for h in logger.handlers):
                return False
            if not logger.propagate:
                break
            logger = logger.parent
        return True


def setup_logging(level: int) -> None:
    """One stderr handler on the root logger (none added if the root has one: pytest, a caller),
    printing each record once."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    handler.addFilter(_NotPrintedYet())
    root.addHandler(handler)
    root.setLevel(level)
