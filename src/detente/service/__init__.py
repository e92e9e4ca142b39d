"""Use cases over the store: submit, replace, cancel, list. Transactions live here."""

from .deconfliction import Deconfliction, SubmitResult

__all__ = ["Deconfliction", "SubmitResult"]
