"""The one place an error becomes the sentence the page shows."""

from __future__ import annotations

from pydantic import ValidationError

from app.errors import AppError

# What the page catches: our own errors, and input that the engine's models refuse.
Shown = (AppError, ValidationError)


def ui_text(error: Exception) -> str:
    if isinstance(error, AppError):
        return error.message
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = ".".join(str(part) for part in first.get("loc", ()))
        message = str(first.get("msg", "is not valid")).removeprefix("Value error, ")
        return f"{field}: {message}" if field else message
    return "Something went wrong; try again."
