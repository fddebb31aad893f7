"""The inference data plane: serve registered model versions over HTTP.

* :mod:`shipyard.serving.protocols` — decode OIP v2 / simple JSON / MLflow bodies, encode predictions.
* :mod:`shipyard.serving.endpoints` — ``Endpoint`` (a name and the version behind it) and ``EndpointTable``.
* :mod:`shipyard.serving.app` — ``create_inference_app``, the Starlette app ``shipyard serve`` runs.

Nothing is imported here, so importing one module does not pull in the web stack.
"""
