"""The exercise console in a browser: the controller's dashboard and the trainees' seats."""

from simulator.web.tokens import Access, Tokens

__all__ = ["Access", "Tokens"]
