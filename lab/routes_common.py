"""What the lab platform's routers share: the error body, the errors each route documents,
`fail` (an error in that shape) and the largest id a path takes."""

from __future__ import annotations

from fastapi import HTTPException
from pydantic import BaseModel

MAX_ID = 2**63 - 1  # SQLite's INTEGER


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


ERRORS = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        400: "Malformed request: the body is not JSON, or the query does not parse.",
        401: "Missing or wrong token.",
        404: "No such resource.",
        409: "Conflict with an existing resource.",
        422: "Invalid input.",
    }.items()
}


def fail(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})
