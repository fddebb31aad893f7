"""Dashboard pages: models (being built)."""

from fastapi import APIRouter

router = APIRouter()
