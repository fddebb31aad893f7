"""Generate FastAPI routes from the operations table and the service methods' type hints.

Each route is a thin adapter: it binds path, query or body values to the service method's
arguments, calls it, and serialises the result with pydantic (NaN and ±inf as strings).
"""

from __future__ import annotations

import inspect
import re
import types
import typing
import warnings
from typing import Annotated, Any

from annotated_types import Interval
from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, TypeAdapter, create_model

from shipyard.api.authorization import authorize
from shipyard.api.operations import OPERATIONS, Operation, service_method
from shipyard.services import Services

_PATH_PARAM = re.compile(r"{(\w+)}")
_JSON_CONFIG = ConfigDict(ser_json_inf_nan="strings")


def _is_simple(annotation: Any) -> bool:
    """Query parameters can carry scalars and lists of scalars, optionally None."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
    else:
        options = [annotation]
    return all(a in (str, int, float, bool) or typing.get_origin(a) is list for a in options)


INT64 = (-(2**63), 2**63 - 1)


def _bounded(annotation: Any) -> Any:
    """``int`` (or ``int | None``) limited to what every store can hold: a larger number is a 422, not
    a database overflow deep inside a service."""
    checked = Annotated[int, Interval(ge=INT64[0], le=INT64[1])]
    if annotation is int:
        return checked
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if int in args and all(a in (int, type(None)) for a in args):
            return checked | None
    return annotation


def _int_limits(annotation: Any) -> dict[str, int]:
    """Path and query integers get the same limits as body fields (see ``_bounded``)."""
    return {"ge": INT64[0], "le": INT64[1]} if _bounded(annotation) is not annotation else {}


def build_router(services: Services) -> APIRouter:
    router = APIRouter()
    for op in OPERATIONS:
        _add_route(router, services, op)
    return router


def _add_route(router: APIRouter, services: Services, op: Operation) -> None:
    method = service_method(op)
    hints = typing.get_type_hints(method)
    signature = inspect.signature(method)
    path_names = set(_PATH_PARAM.findall(op.path))
    arguments = [p for p in signature.parameters.values() if p.name != "self"]
    returns = hints.get("return", Any)
    adapter: TypeAdapter[Any] = TypeAdapter(returns, config=None if _has_config(returns) else _JSON_CONFIG)

    endpoint_params: list[inspect.Parameter] = []
    body_fields: dict[str, Any] = {}
    for arg in arguments:
        annotation = hints.get(arg.name, Any)
        required = arg.default is inspect.Parameter.empty
        limits = _int_limits(annotation)
        if arg.name in path_names:
            endpoint_params.append(
                inspect.Parameter(
                    arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=Path(**limits)
                )
            )
        elif op.method == "GET":
            if not _is_simple(annotation):
                raise TypeError(f"{op.name}: GET argument {arg.name} must be a simple type")
            default = Query(..., **limits) if required else Query(arg.default, **limits)
            endpoint_params.append(
                inspect.Parameter(arg.name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            )
        else:
            body_fields[arg.name] = (_bounded(annotation), ... if required else arg.default)

    body_model: type[BaseModel] | None = None
    if body_fields:
        with warnings.catch_warnings():
            # An argument may be named like a deprecated BaseModel attribute (e.g. ``schema``); harmless here.
            warnings.filterwarnings("ignore", message="Field name .* shadows an attribute", category=UserWarning)
            body_model = create_model(f"{_camel(op.name)}Request", __config__=_JSON_CONFIG, **body_fields)
        endpoint_params.append(
            inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, annotation=body_model, default=Body(...))
        )

    bound = getattr(getattr(services, op.service), op.name)
    # Authorize before the request is validated, so a caller without the permission learns nothing
    # (not even which fields are wrong); only a scope named in the JSON body must wait for the body.
    scope_in_body = op.scope is not None and op.scope[1] in body_fields

    def check_permission(request: Request) -> None:
        if not scope_in_body:
            authorize(services, op, {**request.query_params, **request.path_params})

    def endpoint(**kwargs: Any) -> Response:
        body = kwargs.pop("body", None)
        if body is not None:
            kwargs.update({name: getattr(body, name) for name in body_fields})
        if scope_in_body:
            authorize(services, op, kwargs)
        result = bound(**kwargs)
        return Response(adapter.dump_json(result), media_type="application/json")

    endpoint.__signature__ = inspect.Signature(endpoint_params)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name
    router.add_api_route(
        op.path,
        endpoint,
        methods=[op.method],
        summary=op.summary or op.name,
        description=inspect.getdoc(method) or "",
        response_model=None if returns is type(None) else returns,
        tags=[op.service],
        operation_id=f"{op.service}_{op.name}",
        dependencies=[Depends(check_permission)],
    )


def _has_config(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
