"""`learnbot serve`'s app mounts the console: signed out, /console leads to its sign-in."""

from __future__ import annotations

from tests.web.conftest import Served


async def test_the_served_app_has_the_console(served: Served) -> None:
    response = await served.http.get("/console")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/sign-in")
    page = await served.http.get("/console/sign-in")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    assert (await served.http.get("/console/static/uPlot.iife.min.js")).status_code == 200
