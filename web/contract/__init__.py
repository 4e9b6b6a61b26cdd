"""The typed API contract (pydantic v2 models per area); see ``web.contract.core``."""

from web.contract.core import Binary, Body, Empty, Error, Ok, Out, Redirect, contract, operations, require

__all__ = ["Binary", "Body", "Empty", "Error", "Ok", "Out", "Redirect", "contract", "operations", "require"]
