"""The web dashboard served by ``shipyard server`` at ``/``: server-rendered pages over the services.

Pages read through the same services as the API and show an action only to a caller whose role
allows it; the buttons call the JSON API, which authorizes again. Charts are Plotly figures drawn by
the plotly.js that ships inside the ``plotly`` package.
"""

from shipyard.ui.app import mount_dashboard

__all__ = ["mount_dashboard"]
