"""Dashboard pages: automations (being built)."""

from fastapi import APIRouter

router = APIRouter()
