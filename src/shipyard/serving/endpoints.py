"""Endpoints: a name the server answers to and the model version(s) behind it.

Today an endpoint serves exactly one registered model version. A later change adds deployments
(several versions behind one endpoint, with traffic policies); :meth:`Endpoint.route` is the seam
where that choice will be made, so the HTTP layer already asks it which version answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.names import check_name

if TYPE_CHECKING:
    from shipyard.client import Client
    from shipyard.registry.flavors import LoadedModel

__all__ = ["Endpoint", "EndpointTable", "ServedVersion", "load_endpoint"]


@dataclass(frozen=True)
class ServedVersion:
    """One loaded model version: what answers a request."""

    model_name: str
    version: int
    digest: str
    model: LoadedModel

    @property
    def label(self) -> str:
        """``NAME/VERSION``, as sent in the ``X-Model-Version`` header."""
        return f"{self.model_name}/{self.version}"

    @property
    def signature(self) -> dict[str, Any] | None:
        return self.model.signature


@dataclass
class Endpoint:
    """A named endpoint. ``versions`` holds exactly one version until deployments arrive."""

    name: str
    versions: tuple[ServedVersion, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        check_name(self.name, "endpoint name")
        if len(self.versions) != 1:
            raise InvalidInput(
                f"endpoint {self.name!r} must serve exactly one model version, not {len(self.versions)}",
                field="versions",
            )

    def route(self, request: Any = None) -> ServedVersion:
        """The version that answers ``request``: today the only one (the traffic-policy seam)."""
        return self.versions[0]

    def version(self, version: str | int) -> ServedVersion:
        """The served version numbered ``version``; NotFound naming the endpoint otherwise."""
        for served in self.versions:
            if str(served.version) == str(version):
                return served
        served_list = ", ".join(str(s.version) for s in self.versions)
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
    directory = client.materialize_model(version.digest)
    model = load_model(directory)
    served = ServedVersion(version.model_name, version.version, version.digest, model)
    return Endpoint(name or version.model_name, (served,))
