"""Model URIs: ``models:/NAME/3``, ``models:/NAME@alias``, ``models:/NAME/latest``, ``runs:/RUN_ID/path``."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.core.errors import InvalidInput


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None
    alias: str | None = None  # None with version None means "latest"


@dataclass(frozen=True)
class RunRef:
    run_id: str
    path: str


def parse_model_uri(uri: str) -> ModelRef | RunRef:
    if not isinstance(uri, str):
        raise InvalidInput("model URI must be a string", field="uri")
    if uri.startswith("runs:/"):
        rest = uri[len("runs:/") :].strip("/")
        run_id, _, path = rest.partition("/")
        if not run_id or not path:
            raise InvalidInput(f"invalid run URI {uri!r}: expected runs:/<run-id>/<artifact-path>", field="uri")
        return RunRef(run_id=run_id, path=path)
    if not uri.startswith("models:/"):
        raise InvalidInput(
            f"invalid model URI {uri!r}: expected models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH",
            field="uri",
        )
    rest = uri[len("models:/") :].strip("/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        if not name or not alias or "/" in alias:
            raise InvalidInput(f"invalid model URI {uri!r}: expected models:/NAME@ALIAS", field="uri")
        return ModelRef(name=name, alias=alias)
    name, _, version = rest.rpartition("/")
    if not name:
        return ModelRef(name=version)
    if version == "latest":
        return ModelRef(name=name)
    if not version.isdigit():
        raise InvalidInput(f"invalid model URI {uri!r}: version {version!r} is not a number", field="uri")
    return ModelRef(name=name, version=int(version))
