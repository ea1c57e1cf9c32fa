"""Settings by purpose: ``local`` (make run), ``test`` (make test), ``production``."""
