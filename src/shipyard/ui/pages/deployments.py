"""Dashboard pages: deployments (being built)."""

from fastapi import APIRouter

router = APIRouter()
