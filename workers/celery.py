"""The app ``celery -A workers worker -Q archive`` finds (Celery looks for ``workers.celery``).

Built from the environment when this module is imported, which only the ``celery`` command
does; the rest of the project calls :func:`workers.app.create_app` with explicit settings.
"""

from __future__ import annotations

from workers.app import create_app

app = create_app()
