"""The operators' live dashboard, served by the platform's Faust web server (no build step, no CDN).

``register_dashboard(app, ctx)`` adds the HTML page at ``/``, its static files, one JSON endpoint per panel
(``/api/panels/<id>``), the panel list (``/api/panels``) and a server-sent-events stream (``/api/stream``).
Panels are small modules in :mod:`edream.dashboard.panels`; see :mod:`edream.dashboard.registry` to add one.
"""

from edream.dashboard.web import register_dashboard

__all__ = ["register_dashboard"]
