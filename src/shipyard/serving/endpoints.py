"""Endpoints: a name the server answers to and the model version(s) behind it.

An endpoint holds a :class:`~shipyard.serving.router.Router` over one or more loaded versions. A
static endpoint (tests, ``create_inference_app`` callers) serves one version; the serving runtime
(:mod:`shipyard.serving.runtime`) swaps routers as deployments move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.names import check_name
from shipyard.serving.router import Router

if TYPE_CHECKING:
    from shipyard.client import Client
    from shipyard.registry.flavors import LoadedModel

__all__ = ["Endpoint", "EndpointTable", "ServedVersion", "load_endpoint"]


@dataclass(eq=False)
class ServedVersion:
    """One loaded model version: what answers a request."""

    model_name: str
    version: int
    digest: str
    model: LoadedModel
    batcher: Any = None  # a MicroBatcher of ``predict`` when micro-batching is on

    @property
    def label(self) -> str:
        """``NAME/VERSION``, as sent in the ``X-Model-Version`` header."""
        return f"{self.model_name}/{self.version}"

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.model.signature


Observer = Callable[..., None]


class Endpoint:
    """A named endpoint: a :class:`Router` over loaded versions, swapped atomically as rollouts move.

    ``observer``, when set (by the serving runtime), is told about every answered request:
    ``observer(endpoint, router, variant, latency_ms=, error=, output=, prediction_id=)``.
    """

    def __init__(self, name: str, versions: Sequence[ServedVersion] = (), *, router: Router | None = None) -> None:
        check_name(name, "endpoint name")
        if router is None:
            if len(versions) != 1:
                raise InvalidInput(
                    f"endpoint {name!r} needs a router or exactly one model version, not {len(versions)}",
                    field="versions",
                )
            router = Router.single(versions[0])
        self.name = name
        self.router = router
        self.observer: Observer | None = None

    @property
    def versions(self) -> tuple[ServedVersion, ...]:
        return self.router.versions

    def route(self, request: Any = None) -> ServedVersion:
        """The version that answers a request without a routing key (the metadata routes use it)."""
        return self.router.choose(getattr(request, "headers", None), None)[0].served

    def version(self, version: str | int) -> ServedVersion:
        """The served version numbered ``version``; NotFound naming the endpoint otherwise."""
        router = self.router
        for served in (*router.versions, *((router.shadow,) if router.shadow else ())):
            if str(served.version) == str(version):
                return served
        served_list = ", ".join(str(s.version) for s in router.versions)
        raise NotFound(
            f"endpoint {self.name!r} does not serve version {version!r} (it serves {served_list})", field="version"
        )


class EndpointTable:
    """The endpoints one server answers for, by name."""

    def __init__(self, endpoints: Iterable[Endpoint]):
        self._by_name: dict[str, Endpoint] = {}
        for endpoint in endpoints:
            if endpoint.name in self._by_name:
                raise InvalidInput(f"endpoint {endpoint.name!r} is defined twice", field="name")
            self._by_name[endpoint.name] = endpoint

    @classmethod
    def from_uris(cls, client: Client, specs: Sequence[tuple[str | None, str]]) -> EndpointTable:
        """Resolve, materialise (verified) and load each ``(endpoint_name, model_uri)``.

        A ``None`` endpoint name means the registered model's name.
        """
        return cls(load_endpoint(client, name, uri) for name, uri in specs)

    def get(self, name: str) -> Endpoint:
        endpoint = self._by_name.get(name)
        if endpoint is None:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise NotFound(f"no endpoint or model named {name!r} (serving: {known})", field="name")
        return endpoint

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def __iter__(self) -> Iterator[Endpoint]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def load_endpoint(client: Client, name: str | None, uri: str) -> Endpoint:
    """An endpoint serving the model version ``uri`` resolves to (``models:/NAME@ALIAS``, ``models:/NAME/3``)."""
    from shipyard.registry.flavors import load_model

    version = client.resolve_model(uri)
    directory = client.verified_model_dir(version.model_name, version.version, version.digest)
    model = load_model(directory)
    served = ServedVersion(version.model_name, version.version, version.digest, model)
    return Endpoint(name or version.model_name, (served,))
